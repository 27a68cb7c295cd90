"""The error tree shared by every Einblick package.

    EinblickError                  root: the CLI catches this and prints its message, exit 2
    ├── PolicyError(path, line, column, key, message)   a policy file is wrong
    └── (gateway.errors)           configuration, broker, log and verification errors

Every error carries its context as attributes; the message names the object and says what was
expected and what was found, for the installer reading it at 2 am.
"""

from __future__ import annotations

__all__ = ["EinblickError", "PolicyError"]


class EinblickError(Exception):
    """Root of every error Einblick raises on purpose."""


class PolicyError(EinblickError):
    """A policy document is invalid. ``str()`` reads ``file:line:column: key: message``."""

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
