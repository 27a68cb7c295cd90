"""The device registry: who may connect to the device-side broker, and under which topics.

A device's identity and topics come from its customer's policy (``devices:``); the registry adds
the credentials an integrator flashes into the device. ``einblick device add`` writes both the
registry entry and, for a device the policy does not declare yet, the topics it may publish under
(by default ``devices/<customer>/<device>/<stream>``), so a device can be connected first and
released by the policy later: until a grant covers it, everything it sends is withheld.

The file is owner-only JSON written atomically; passwords are stored only as Mosquitto ``$7$``
hashes, so the registry never holds a usable secret.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.broker import hash_password, write_private
from gateway.errors import GatewayError

__all__ = ["DEFAULT_TOPIC", "RegisteredDevice", "Registry", "RegistryError", "slug"]

DEFAULT_TOPIC = "devices/{customer}/{device}/{{stream}}"
_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class RegistryError(GatewayError):
    """A registry operation cannot be done as asked."""


def slug(name: str) -> str:
    """'Backofen 1' -> 'backofen-1': a device id from its human name."""
    table = str.maketrans(
        {"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"}
    )
    text = re.sub(r"[^a-z0-9]+", "-", name.translate(table).lower()).strip("-")
    return text[:63] or "device"


@dataclass(frozen=True, slots=True)
class RegisteredDevice:
    customer: str
    device: str
    name: str
    kind: str
    username: str
    password_hash: str | None  # None: authenticates with a client certificate only
    topics: tuple[tuple[str, str], ...] = ()  # (pattern, stream) when the policy has none yet
    cert_serial: str | None = None  # hex serial of its client certificate from the gateway's CA
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def key(self) -> tuple[str, str]:
        return (self.customer, self.device)


class Registry:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._devices: dict[tuple[str, str], RegisteredDevice] = {}
        self.load()

    def load(self) -> None:
        if not self.path.exists():
            self._devices = {}
            return
        try:
            data = orjson.loads(self.path.read_bytes())
            devices = [
                RegisteredDevice(**{**d, "topics": tuple(tuple(t) for t in d.get("topics", ()))})
                for d in data["devices"]
            ]
        except (OSError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            raise RegistryError(f"{self.path}: the device registry cannot be read: {exc}") from exc
        self._devices = {d.key: d for d in devices}

    def save(self) -> None:
        devices = [asdict(d) for d in sorted(self._devices.values(), key=lambda d: d.key)]
        write_private(
            self.path,
            orjson.dumps({"version": 1, "devices": devices}, option=orjson.OPT_INDENT_2).decode(),
        )

    def devices(self) -> list[RegisteredDevice]:
        return sorted(self._devices.values(), key=lambda d: d.key)

    def get(self, customer: str, device: str) -> RegisteredDevice:
        found = self._devices.get((customer, device))
        if found is None:
            raise RegistryError(
                f"no device {device!r} registered for customer {customer!r} (see 'einblick device list')"
            )
        return found

    def add(
        self,
        customer: str,
        device: str,
        *,
        name: str,
        kind: str,
        topics: tuple[tuple[str, str], ...] = (),
        certificate: bool = False,
    ) -> tuple[RegisteredDevice, str | None]:
        """Register a device; returns it and its new password (shown once, never stored)."""
        for value, what in ((customer, "customer"), (device, "device")):
            if not _ID.match(value):
                raise RegistryError(
                    f"{what} id must be lower-case letters, digits and '-', found {value!r}"
                )
        if (customer, device) in self._devices:
            raise RegistryError(
                f"device {device!r} of customer {customer!r} is already registered (use 'device rotate' for new credentials)"
            )
        password = None if certificate else secrets.token_urlsafe(18)
        entry = RegisteredDevice(
            customer=customer,
            device=device,
            name=name,
            kind=kind,
            username=f"{customer}.{device}",
            password_hash=hash_password(password) if password else None,
            topics=topics,
        )
        self._devices[entry.key] = entry
        return entry, password

    def rotate(self, customer: str, device: str) -> tuple[RegisteredDevice, str]:
        current = self.get(customer, device)
        password = secrets.token_urlsafe(18)
        rotated = RegisteredDevice(**{**asdict(current), "password_hash": hash_password(password)})
        self._devices[rotated.key] = rotated
        return rotated, password

    def set_certificate(self, customer: str, device: str, serial: int) -> RegisteredDevice:
        """Record the device's (new) client certificate; the caller revokes the old one."""
        current = self.get(customer, device)
        updated = RegisteredDevice(**{**asdict(current), "cert_serial": f"{serial:x}"})
        self._devices[updated.key] = updated
        return updated

    def remove(self, customer: str, device: str) -> RegisteredDevice:
        current = self.get(customer, device)
        del self._devices[current.key]
        return current
