"""One module per command group; each exposes ``register(subparsers)`` and the CLI wires them.

Each ``register`` adds its sub-commands with ``set_defaults(func=...)``; ``func(args)`` returns
the process exit code. User mistakes raise ``EinblickError`` subclasses, which the CLI prints as
one line on stderr (exit 2) instead of a traceback.
"""
