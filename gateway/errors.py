"""Errors raised by the gateway: configuration, broker, log and verification.

    EinblickError (policies.errors)
    ├── PolicyError
    └── GatewayError
        ├── ConfigError(path, line, column, key, message)   the installer's file is wrong
        ├── BrokerError                                      Mosquitto would not start or stay up
        └── StoreError                                       the database refused a write

Messages name the object and say what was expected and what was found.
"""

from __future__ import annotations

from policies.errors import EinblickError

__all__ = ["BrokerError", "ConfigError", "GatewayError", "StoreError"]


class GatewayError(EinblickError):
    """Root of the gateway's own errors."""


class ConfigError(GatewayError):
    """The configuration file is wrong. ``str()`` reads ``file:line:column: key: message``."""

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
            where += f":{line}" + (f":{column}" if column is not None else "")
        super().__init__(f"{where}: " + (f"{key}: " if key else "") + message)


class BrokerError(GatewayError):
    """The managed Mosquitto could not be started, configured or reached."""


class StoreError(GatewayError):
    """The database refused a write (disk full, locked, corrupt): the gateway fails closed."""
