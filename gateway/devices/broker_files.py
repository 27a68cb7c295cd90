"""The files Einblick writes for Mosquitto: mosquitto.conf (from ``MosquittoSettings``), the
password file and the ACL.

All three are owner-only and replaced atomically (a crash leaves the old file whole). The
password file holds Mosquitto 2's PBKDF2 hashes, never a password. The ACL gives the gateway
everything and a device only the right to publish under its own topics (and to read its
command topics); why a device may read nothing else is said at ``device_rule``.
"""

from __future__ import annotations

import base64
import hashlib
import os
import pwd
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import BrokerError
from policies.topics import NAMESPACE, TopicPattern

__all__ = [
    "AclRule",
    "MosquittoSettings",
    "device_rule",
    "gateway_rule",
    "hash_password",
    "topic_filter",
    "write_files",
    "write_private",
]


def hash_password(password: str, *, salt: bytes | None = None) -> str:
    """Mosquitto 2's ``$7$`` format: PBKDF2-HMAC-SHA512, 101 iterations, 12-byte salt."""
    salt = salt if salt is not None else secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, 101, 64)
    return f"$7$101${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def topic_filter(pattern: str) -> str:
    """Turn a policy topic pattern (``owntracks/{user}/{device}``) into an MQTT filter."""
    return TopicPattern(pattern).to_mqtt_filter()


def write_private(path: Path, text: str) -> None:
    """Write a file only its owner can read, atomically (a crash leaves the old file whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class AclRule:
    """One broker user and the topic filters it may use."""

    username: str
    password_hash: str | None  # None: certificate-authenticated user (no password line)
    write: tuple[str, ...] = ()
    readwrite: tuple[str, ...] = ()
    read: tuple[str, ...] = ()
    # Filters it may not use whatever the others allow (Mosquitto reads "deny" first).
    deny: tuple[str, ...] = ()


def gateway_rule(username: str, password_hash: str) -> AclRule:
    return AclRule(username=username, password_hash=password_hash, readwrite=("#",))


def device_rule(
    username: str,
    password_hash: str | None,
    patterns: Sequence[str],
    commands: Sequence[str] = (),
    others: Iterable[str] = (),
) -> AclRule:
    """A device may publish under its own topics and read nothing but its own command topics.

    Write only: with read access a device could subscribe to its own topic with a persistent
    session, go offline and have the broker queue everything it publishes for itself (60 MB in
    one measurement, bounded only by the global queue limits the gateway's session needs).

    ``others``: the other customers. A pattern with a wildcard first level (``{id}/events/rpc``)
    becomes a filter (``+/events/rpc``) that also matches topics in their namespaces
    (``devices/<other>/…``), where their devices publish: denied, so the device can never
    publish as one of theirs."""
    filters = tuple(dict.fromkeys(topic_filter(p) for p in patterns))
    reads = tuple(dict.fromkeys(topic_filter(p) for p in commands))
    wild = any(TopicPattern(p).first_level is None for p in patterns)
    deny = tuple(f"{NAMESPACE}/{other}/#" for other in sorted(set(others))) if wild else ()
    return AclRule(
        username=username, password_hash=password_hash, write=filters, read=reads, deny=deny
    )


@dataclass(frozen=True, slots=True)
class MosquittoSettings:
    directory: Path  # holds mosquitto.conf, passwd, acl, persistence
    port: int
    listen: str = "127.0.0.1"
    tls_port: int | None = None
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    crl_file: Path | None = None  # revoked device certificates (see gateway/devices/tls.py)
    require_client_cert: bool = False
    anonymous: bool = False  # only for test and demo "cloud" brokers
    # The gateway holds QoS 1 messages unacknowledged until they are committed; a window of
    # 1,000 lets the writer commit large batches under load.
    max_inflight: int = 1000
    # While the gateway is paused or down, the broker queues for its persistent session. The
    # default of 1,000 would drop the 1,001st message: Einblick never drops, so allow a million.
    max_queued: int = 1_000_000
    # Bytes queued per client, and Mosquitto's heap limit (0: none). See BrokerLimits in
    # gateway/config/device_broker.py for the defaults and why.
    max_queued_bytes: int = 0
    memory_limit: int = 0
    # Mosquitto holds a whole packet in memory before anyone can look at it; without a limit a
    # device may announce 256 MB. Bodies above the gateway's inspection limit are still accepted
    # up to this size, so they are withheld with a logged reason rather than cut off unseen.
    max_packet_size: int = 16 * 1024 * 1024
    extra: tuple[str, ...] = ()  # further mosquitto.conf lines (the benchmark's bridge)
    # Mosquitto's log (mosquitto.log) is rotated at this size to mosquitto.log.1, so it takes
    # at most twice this on disk: a scan of connection attempts writes lines as fast as it
    # connects, and the box runs unattended for months.
    log_max_bytes: int = 1 << 20


def write_files(
    settings: MosquittoSettings,
    rules: Iterable[AclRule],
    conf_path: Path,
    *,
    information: bool,
    debug: bool,
) -> None:
    """Write the password file, the ACL and ``conf_path``; ``information`` and ``debug`` turn
    on Mosquitto's log levels the gateway reads (connections, refusals)."""
    settings.directory.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.directory, 0o700)
    persistence = settings.directory / "persistence"
    persistence.mkdir(mode=0o700, exist_ok=True)
    os.chmod(persistence, 0o700)
    rules = list(rules)
    write_private(
        settings.directory / "passwd",
        "".join(f"{r.username}:{r.password_hash}\n" for r in rules if r.password_hash),
    )
    acl: list[str] = []
    for rule in rules:
        acl.append(f"user {rule.username}")
        acl.extend(f"topic deny {t}" for t in rule.deny)
        acl.extend(f"topic write {t}" for t in rule.write)
        acl.extend(f"topic readwrite {t}" for t in rule.readwrite)
        acl.extend(f"topic read {t}" for t in rule.read)
        acl.append("")
    write_private(settings.directory / "acl", "\n".join(acl))
    lines = [
        "# Written by Einblick; edits are overwritten. Change einblick.yaml instead.",
        "per_listener_settings false",
        # Started as root, Mosquitto would switch to the 'mosquitto' user and could no longer
        # read the owner-only files we just wrote; it runs as whoever runs the gateway.
        f"user {pwd.getpwuid(os.geteuid()).pw_name}",
        f"allow_anonymous {'true' if settings.anonymous else 'false'}",
        "persistence true",
        f"persistence_location {persistence}/",
        # Queued messages reach the disk within a second, so a broker crash loses at most that.
        "autosave_interval 1",
        "autosave_on_changes false",
        f"max_inflight_messages {settings.max_inflight}",
        f"max_queued_messages {settings.max_queued}",
        f"max_queued_bytes {settings.max_queued_bytes}",
        *([f"memory_limit {settings.memory_limit}"] if settings.memory_limit else []),
        f"max_packet_size {settings.max_packet_size}",
        # Nagle's algorithm would hold a PUBLISH back until the previous one's TCP ACK; the
        # gateway acknowledges only after its commit, so that costs up to 40 ms a message.
        "set_tcp_nodelay true",
        f"pid_file {settings.directory / 'mosquitto.pid'}",
        "log_dest stderr",
        "log_type error",
        "log_type warning",
        "log_type notice",
        *(["log_type information"] if information else []),
        *(["log_type debug"] if debug else []),
        "connection_messages true",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if not settings.anonymous:
        lines += [
            f"password_file {settings.directory / 'passwd'}",
            f"acl_file {settings.directory / 'acl'}",
        ]
    # A listener option (not reloaded on SIGHUP): the client id is the username, so only the
    # holder of a device's credentials can open or replace that device's session. Brokers
    # without users (test and demo "cloud" brokers) keep the client's own id.
    bind_identity = [] if settings.anonymous else ["use_username_as_clientid true"]
    lines += [f"listener {settings.port} {settings.listen}", *bind_identity]
    if settings.tls_port is not None:
        if not (settings.ca_file and settings.cert_file and settings.key_file):
            raise BrokerError(
                "broker.tls_port is set but the gateway's CA, certificate or key is missing (run 'einblick init')"
            )
        lines += [
            f"listener {settings.tls_port} {settings.listen}",
            *bind_identity,
            f"cafile {settings.ca_file}",
            f"certfile {settings.cert_file}",
            f"keyfile {settings.key_file}",
        ]
        if settings.crl_file is not None:
            lines.append(f"crlfile {settings.crl_file}")
        if settings.require_client_cert:
            lines += ["require_certificate true", "use_identity_as_username true"]
    lines.extend(settings.extra)
    write_private(conf_path, "\n".join(lines) + "\n")
