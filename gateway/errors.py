"""Errors raised by the gateway: configuration, broker, log and verification.

    EinblickError (policies.errors)
    ├── PolicyError
    └── GatewayError
        ├── ConfigError(path, line, column, key, message)   the installer's file is wrong
        ├── BrokerError                                      Mosquitto would not start or stay up
        ├── StoreError                                       the database refused a write
        └── LogError                                         the explanation log (gateway.log)
            ├── EntryInvalid(field, message)                 a draft cannot be recorded
            ├── KeyFileError(path, message)                  a key file is missing, unsafe or bad
            ├── SignatureInvalid(what, key_id)               a signature does not verify
            ├── ChainBroken(customer, index, what, expected, found)  verification failed
            └── BundleError(line, message)                   an export bundle is malformed

Messages name the object and say what was expected and what was found.
"""

from __future__ import annotations

from typing import ClassVar

from policies.errors import EinblickError, LocatedError

__all__ = [
    "BrokerError",
    "BundleError",
    "ChainBroken",
    "ConfigError",
    "EntryInvalid",
    "GatewayError",
    "KeyFileError",
    "LogError",
    "SignatureInvalid",
    "StoreError",
]


class GatewayError(EinblickError):
    """Root of the gateway's own errors."""


class ConfigError(GatewayError, LocatedError):
    """The configuration file is wrong. ``str()`` reads ``file:line:column: key: message``."""


class BrokerError(GatewayError):
    """The managed Mosquitto could not be started, configured or reached."""


class StoreError(GatewayError):
    """The database refused a write (disk full, locked, corrupt): the gateway fails closed."""

    what: ClassVar[str] = "the database"  # what failed, as a log line names it


class LogError(GatewayError):
    """Root of the explanation log's errors (``gateway.log``)."""


class EntryInvalid(LogError):
    """A draft entry cannot be recorded: ``field`` is wrong (expected vs found in ``message``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"log entry: {field}: {message}")


class KeyFileError(LogError):
    """A key file is missing, unreadable, not an Ed25519 key, or readable by others."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


class SignatureInvalid(LogError):
    """A signature over ``what`` does not verify under the key ``key_id``."""

    def __init__(self, what: str, key_id: str, message: str = "signature does not verify") -> None:
        self.what = what
        self.key_id = key_id
        super().__init__(f"{what}: {message} (key {key_id})")


class ChainBroken(LogError):
    """Verification failed at entry ``index`` of ``customer``'s chain.

    ``str()`` reads ``entry 41 of customer baeckerei-schmidt: hash mismatch: expected ab12…,
    found 9f3c…``.
    """

    def __init__(self, customer: str, index: int, what: str, expected: str, found: str) -> None:
        self.customer = customer
        self.index = index
        self.what = what
        self.expected = expected
        self.found = found
        super().__init__(
            f"entry {index} of customer {customer}: {what}: expected {expected}, found {found}"
        )


class BundleError(LogError):
    """An export bundle is malformed at ``line`` (1-based; 0 for the bundle as a whole)."""

    def __init__(self, line: int, message: str) -> None:
        self.line = line
        self.message = message
        super().__init__(f"bundle line {line}: {message}" if line else f"bundle: {message}")
