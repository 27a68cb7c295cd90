"""The error tree shared by every Einblick package.

    EinblickError                  root: the CLI catches this and prints its message, exit 2
    ├── LocatedError(path, line, column, key, message)  something in a file is wrong
    │   └── PolicyError                                  a policy file (ConfigError: the config)
    └── (gateway.errors)           configuration, broker, log and verification errors

Every error carries its context as attributes; the message names the object and says what was
expected and what was found, for the installer reading it at 2 am.
"""

from __future__ import annotations

__all__ = ["EinblickError", "LocatedError", "PolicyError"]


class EinblickError(Exception):
    """Root of every error Einblick raises on purpose."""


class LocatedError(EinblickError):
    """Something in a file is wrong. ``str()`` reads ``file:line:column: key: message``."""

    def __init__(
        self,
        path: str,
        message: str,
        *,
        line: int | None = None,
        column: int | None = None,
        key: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.key = key
        self.message = message
        where = path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        prefix = f"{where}: "
        if key:
            prefix += f"{key}: "
        super().__init__(prefix + message)


class PolicyError(LocatedError):
    """A policy document is invalid."""
