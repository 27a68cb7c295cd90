"""Einblick's pure core: policy model, loading, compiling, evaluating and explaining.

Nothing in this package opens a socket, reads a clock or touches asyncio: the caller passes
``now`` and every key in, so the engine can be tested exhaustively and benchmarked alone.
"""
