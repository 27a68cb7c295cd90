"""The device registry: who may connect to the device-side broker, and under which topics.

A device's identity and topics come from its customer's policy (``devices:``); the registry adds
the credentials an integrator flashes into the device. ``einblick device add`` writes both the
registry entry and, for a device the policy does not declare yet, the topics it may publish under
(by default ``devices/<customer>/<device>/<stream>``), so a device can be connected first and
released by the policy later: until a grant covers it, everything it sends is withheld.

The file is owner-only JSON written atomically; passwords are stored only as Mosquitto ``$7$``
hashes, so the registry never holds a usable secret.

Topics registered here (``--topic``, ``--command-topic``) are confined to their owner:

- a customer's namespace is ``devices/<customer>/…``; the policy's own ``devices:`` may use any
  topic (the installer writes the policy, and the engine refuses overlaps across customers), but
  a topic given at registration must lie in the namespace;
- a device's own prefix is ``devices/<customer>/<device>``: a registered pattern is that topic or
  lies under it, so its first three levels are literal and no wildcard reaches another device;
- no registered pattern may overlap a topic of another device, declared in any customer's policy
  or registered (the error names that device);
- command topics (what the device may subscribe to; none by default) follow the same rules and
  must not overlap any device's publish topics, so the gateway never mistakes a command for data.

A customer's policy may not declare a topic in another customer's namespace
(``foreign_namespace``: refused with file and line, ``check_namespace``). A pattern whose first
level is a wildcard or capture (as device families such as Shelly's ``{id}/events/rpc`` need)
may match topics there too, but never takes them: the engine gives such a topic to the
namespace's customer, the broker's ACL denies it to the pattern's device, and the two claims do
not count as overlapping here (``policies.topics.claims_overlap``), in whatever order the policy
and the registration came.

A registry that already holds a violating device (written by an older version, or by hand) does
not stop the gateway: ``problems`` names each such device, and the gateway leaves it out of the
broker's password file until it is fixed, so its firmware keeps its messages instead of losing them.
"""

from __future__ import annotations

import difflib
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson
from pydantic import ValidationError

from gateway.devices.broker_files import hash_password, write_private
from gateway.errors import GatewayError
from policies.errors import PolicyError
from policies.loader import load_policy
from policies.model import PolicyDocument, TopicSpec
from policies.topics import NAMESPACE, claims_overlap

__all__ = [
    "DEFAULT_TOPIC",
    "Claim",
    "RegisteredDevice",
    "Registry",
    "RegistryError",
    "check_namespace",
    "check_topic",
    "closest",
    "document_claims",
    "foreign_namespace",
    "policy_claims",
    "slug",
]


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
class Claim:
    """A topic pattern some device publishes under (or, ``command``, subscribes to)."""

    customer: str
    device: str
    pattern: str
    source: str  # where it is written: a policy file, or the registry
    command: bool = False

    def names(self) -> str:
        return f"device {self.device!r} of customer {self.customer!r} ({self.source})"


def check_topic(customer: str, device: str, pattern: str, *, what: str = "--topic") -> None:
    """Refuse a registered pattern outside the device's own prefix ``devices/<customer>/<device>``."""
    try:
        TopicSpec(pattern=pattern)
    except ValidationError as exc:
        why = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise RegistryError(f"{what} {pattern!r} of device {device!r}: {why}") from None
    levels = pattern.split("/")
    prefix = [NAMESPACE, customer, device]
    own = "/".join(prefix)
    for index, expected in enumerate(prefix):
        found = levels[index] if index < len(levels) else None
        if found == expected:
            continue
        if index < 2:
            problem = f"lies outside customer {customer!r}'s namespace {NAMESPACE}/{customer}/"
        elif found is not None and (found in {"+", "#"} or found.startswith("{")):
            problem = f"has a wildcard ({found!r}) that reaches past the device's own prefix {own}/"
        else:
            problem = f"is not under the device's own prefix {own}/"
        raise RegistryError(
            f"{what} {pattern!r} of device {device!r} (customer {customer!r}) {problem}. "
            f"A registered device publishes under {own}/… (e.g. {own}/{{stream}}); a device "
            "with fixed firmware topics is declared in its customer's policy (devices:) instead"
        )


def foreign_namespace(customer: str, pattern: str) -> str | None:
    """Why a topic a policy of ``customer`` declares may not be its own: it lies in the
    registry's namespace outside the customer's own (``devices/<other>/…``, a wildcard or capture
    in the second level included); else None. Such a file would take that customer's registered
    devices' topics (their registrations refused as overlapping) and its messages. (A pattern
    whose *first* level is a wildcard or capture never takes a topic there: module text.)"""
    levels = pattern.split("/")
    if levels[0] != NAMESPACE or len(levels) < 2 or levels[1] == customer:
        return None
    return (
        f"topic {pattern!r} lies in the registry's namespace {NAMESPACE}/ outside customer "
        f"{customer!r}'s own {NAMESPACE}/{customer}/, where registered devices of other "
        f"customers publish. Declare it under {NAMESPACE}/{customer}/ or outside {NAMESPACE}/"
    )


def check_namespace(source: str, document: PolicyDocument) -> None:
    """Refuse a policy with a topic in another customer's namespace (``foreign_namespace``),
    naming file and line: the gateway (gateway/messages/policyset.py) and ``einblick policy
    check`` alike."""
    for i, device in enumerate(document.devices):
        for j, topic in enumerate(device.topics):
            problem = foreign_namespace(document.customer, topic.pattern)
            if problem is not None:
                line, column = document.locate(("devices", i, "topics", j, "pattern"))
                raise PolicyError(
                    source, f"device {device.id!r}: {problem}", line=line, column=column
                )


def conflicts(claim: Claim, others: Iterable[Claim]) -> list[str]:
    """Why ``claim`` may not be registered: the other devices' patterns it overlaps."""
    found = []
    for other in others:
        if claim.command == other.command and (other.customer, other.device) == (
            claim.customer,
            claim.device,
        ):
            continue  # a device's own topics of one kind (their overlaps are the engine's)
        if claims_overlap(claim.customer, claim.pattern, other.customer, other.pattern):
            found.append(f"{claim.pattern!r} overlaps {other.pattern!r} of {other.names()}")
    return found


def document_claims(source: str, document: PolicyDocument) -> list[Claim]:
    """The topics a loaded policy declares, but those in another customer's namespace (refused
    when the file loads: it claims nothing there meanwhile)."""
    return [
        Claim(document.customer, spec.id, topic.pattern, f"policy {source}")
        for spec in document.devices
        for topic in spec.topics
        if foreign_namespace(document.customer, topic.pattern) is None
    ]


def policy_claims(directory: Path) -> list[Claim]:
    """Every topic the policy files in ``directory`` declare (files that do not load: none)."""
    claims: list[Claim] = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else ():
        try:
            document = load_policy(path)
        except PolicyError:
            continue  # the gateway reports it; it declares nothing while it does not load
        claims.extend(document_claims(str(path), document))
    return claims


def closest(name: str, known: Iterable[str]) -> str:
    """' (did you mean 'x'?)' for a mistyped name, from difflib; '' when nothing is close."""
    matches = difflib.get_close_matches(name, sorted(set(known)), n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(m) for m in matches)}?)" if matches else ""


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
    commands: tuple[str, ...] = ()  # topics it may subscribe to; none unless configured
    created: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @property
    def key(self) -> tuple[str, str]:
        return (self.customer, self.device)

    def claims(self, source: str) -> list[Claim]:
        return [Claim(self.customer, self.device, p, source) for p, _ in self.topics] + [
            Claim(self.customer, self.device, p, source, command=True) for p in self.commands
        ]


class Registry:
    def __init__(self, path: Path, *, reserved: Iterable[str] = ("einblick-gateway",)) -> None:
        self.path = path
        # Broker users that are not devices (the gateway's own): no device may be registered
        # under one, or it would share the gateway's password line, ACL and session.
        self.reserved = frozenset(reserved)
        self._devices: dict[tuple[str, str], RegisteredDevice] = {}
        self.load()

    def load(self) -> None:
        if not self.path.exists():
            self._devices = {}
            return
        try:
            data = orjson.loads(self.path.read_bytes())
            devices = [
                RegisteredDevice(
                    **{
                        **d,
                        "topics": tuple(tuple(t) for t in d.get("topics", ())),
                        "commands": tuple(d.get("commands", ())),
                    }
                )
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
        commands: tuple[str, ...] = (),
        certificate: bool = False,
        claims: Sequence[Claim] = (),
    ) -> tuple[RegisteredDevice, str | None]:
        """Register a device; returns it and its new password (shown once, never stored).

        ``claims``: the topics the customers' policies declare (``policy_claims``); the new
        device's topics may overlap none of them nor any registered device's."""
        for value, what in ((customer, "customer"), (device, "device")):
            if not _ID.match(value):
                raise RegistryError(
                    f"{what} id must be lower-case letters, digits and '-', found {value!r}"
                )
        if (customer, device) in self._devices:
            raise RegistryError(
                f"device {device!r} of customer {customer!r} is already registered (use 'device rotate' for new credentials)"
            )
        username = f"{customer}.{device}"
        if username in self.reserved:
            raise RegistryError(f"{username!r} is the gateway's own broker user; choose another id")
        for pattern, _ in topics:
            check_topic(customer, device, pattern)
        for pattern in commands:
            check_topic(customer, device, pattern, what="--command-topic")
        candidate = RegisteredDevice(
            customer, device, name, kind, username, None, topics, None, commands
        )
        declared = {(c.customer, c.device) for c in claims}
        others = [*claims, *(c for d in self.devices() for c in self._claims_of(d, declared))]
        mine = candidate.claims(str(self.path))
        others += [c for c in mine if not c.command]  # its commands vs its own publish topics
        if (customer, device) in declared:  # the policy's topics are the device's own
            mine = [c for c in mine if c.command] + [
                c for c in claims if (c.customer, c.device) == (customer, device)
            ]
        found = [problem for claim in mine for problem in conflicts(claim, others)]
        if found:
            raise RegistryError(
                f"device {device!r} of customer {customer!r} is not registered: "
                + "; ".join(found)
                + ". A topic must belong to exactly one device"
            )
        password = None if certificate else secrets.token_urlsafe(18)
        entry = RegisteredDevice(
            customer=customer,
            device=device,
            name=name,
            kind=kind,
            username=username,
            password_hash=hash_password(password) if password else None,
            topics=topics,
            commands=commands,
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

    def _claims_of(self, device: RegisteredDevice, declared: set[tuple[str, str]]) -> list[Claim]:
        """A registered device's claims; a device its policy declares publishes under the
        policy's topics (which the caller has), so only its command topics count here."""
        claims = device.claims(str(self.path))
        return [c for c in claims if c.command] if device.key in declared else claims

    def problems(self, claims: Sequence[Claim]) -> dict[tuple[str, str], str]:
        """Registered devices whose topics break the rules above, each with the reason.

        Devices are judged oldest first against the policies' topics and the devices already
        accepted, so of two overlapping registrations the later one is named."""
        declared = {(c.customer, c.device) for c in claims}
        accepted: list[Claim] = list(claims)
        found: dict[tuple[str, str], str] = {}
        for device in sorted(self._devices.values(), key=lambda d: (d.created, d.key)):
            mine = self._claims_of(device, declared)
            try:
                if device.username in self.reserved:
                    raise RegistryError(f"{device.username!r} is the gateway's own broker user")
                for claim in mine:
                    what = "--command-topic" if claim.command else "--topic"
                    check_topic(device.customer, device.device, claim.pattern, what=what)
                against = [*accepted, *(c for c in mine if not c.command)]
                overlaps = [p for claim in mine for p in conflicts(claim, against)]
                if overlaps:
                    raise RegistryError("; ".join(overlaps))
            except RegistryError as exc:
                found[device.key] = (
                    f"{self.path}: device {device.device!r} of customer {device.customer!r} is "
                    f"not admitted to the broker: {exc}. Remove it ('einblick device remove "
                    f"--customer {device.customer} --id {device.device}') and add it again"
                )
                continue
            accepted.extend(mine)
        return found

    def remove(self, customer: str, device: str) -> RegisteredDevice:
        current = self.get(customer, device)
        del self._devices[current.key]
        return current
