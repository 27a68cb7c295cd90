"""Who may reach the device broker, as the running gateway sees it: the registry, the devices it
leaves out, the broker's users and ACL, the managed Mosquitto and what a registry change does.

The topics a device may publish under come from the running policies (or, for a customer whose
policy is not running, where it last published): the caller passes them in as ``declared``, so this
room never reaches into the message path. ``on_registry_change`` tells the caller which customers'
devices were added, removed or changed, so their policies are compiled again.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.config import Config
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import (
    AclRule,
    MosquittoSettings,
    device_rule,
    gateway_rule,
    hash_password,
    write_private,
)
from gateway.devices.refusals import RefusalBook, WarningBudget
from gateway.devices.registry import RegisteredDevice, Registry, policy_claims
from gateway.devices.tls import CertificateAuthority, TlsFiles
from gateway.errors import ConfigError
from policies.engine import Engine

__all__ = ["DeviceAccess", "DeviceEffect", "broker_users", "read_secret"]

log = logging.getLogger(__name__)

# (customer, device) -> the topic patterns it may publish under, as the running policies say.
Declared = Callable[[], dict[tuple[str, str], list[str]]]


def read_secret(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(str(path), f"cannot read {what}: {exc.strerror}") from exc


def broker_users(config: Config) -> tuple[str, str, str]:
    """The gateway's own broker users: its session, the helper that clears retained messages at
    an erasure, and the one that sweeps them (gateway/messages/retained.py); each its own user, so
    a helper's clean session never touches the gateway's persistent one: Mosquitto makes every
    client id the username."""
    user = config.broker.gateway_username
    return (user, f"{user}-erasure", f"{user}-retained")


@dataclass(frozen=True)
class DeviceEffect:
    """What the running gateway does with one device now (``einblick device add|remove``)."""

    state: str  # decided, removed, not_admitted, no_tls_listener, policy_not_running, not_in_policy
    policy: str | None
    version: str | None
    error: str | None


class DeviceAccess:
    """The registry, the devices left out of the broker, and the managed broker's files."""

    def __init__(self, config: Callable[[], Config], declared: Declared) -> None:
        self._config = config
        self._declared = declared
        first = config()
        self.registry = Registry(first.data_path / "devices.json", reserved=broker_users(first))
        # Registered devices whose topics break the confinement rules (gateway/devices/
        # registry.py), with the reason: left out of the broker and the policies, named in
        # status; the others run.
        self.problems: dict[tuple[str, str], str] = {}
        self.refusals = RefusalBook([first.broker.tls_port] if first.broker.tls_port else [])
        self._warnings = WarningBudget()
        self._summary: asyncio.TimerHandle | None = None  # writes what the budget held back
        self.broker: Mosquitto | None = None
        self.on_registry_change: Callable[[set[str]], None] = lambda customers: None
        self._revoked_certificates = False
        self.check()

    def check(self) -> None:
        """Find the registered devices that break the topic rules against the policies' files."""
        self.problems = self.registry.problems(policy_claims(self._config().policies_path))
        for problem in self.problems.values():
            log.error("%s", problem)

    def admitted(self) -> list[RegisteredDevice]:
        return [d for d in self.registry.devices() if d.key not in self.problems]

    def gateway_password(self) -> str:
        config = self._config()
        if config.broker.mode == "external":
            if config.broker.gateway_password_file is None:
                return ""
            return read_secret(
                config.path(config.broker.gateway_password_file), "the gateway's broker password"
            )
        path = config.broker_dir / "gateway.secret"
        if not path.exists():
            write_private(path, secrets.token_urlsafe(24))
        return read_secret(path, "the gateway's broker password")

    def acl_rules(self) -> list[AclRule]:
        """The broker's users: the gateway reads everything; a device only its own topics."""
        password_hash = hash_password(self.gateway_password())
        rules = [gateway_rule(user, password_hash) for user in broker_users(self._config())]
        topics = self._declared()
        customers = {d.customer for d in self.registry.devices()} | {c for c, _ in topics}
        for registered in self.admitted():
            patterns = topics.get(registered.key) or [p for p, _ in registered.topics]
            rules.append(
                device_rule(
                    registered.username,
                    registered.password_hash,
                    patterns,
                    registered.commands,
                    others=customers - {registered.customer},
                )
            )
        return rules

    def rewrite_acl(self) -> None:
        """Write the password file and ACL again and have the managed broker re-read them."""
        if self.broker is not None:
            self.broker.write_files(self.acl_rules())
            self.broker.reload()

    async def start_broker(self) -> None:
        config = self._config()
        tls = TlsFiles(config.data_path / "tls")
        has_tls = config.broker.tls_port is not None
        limits = config.broker.limits
        if has_tls:
            # Re-signed at every start: OpenSSL refuses every client once a CRL has expired.
            CertificateAuthority.load(tls).write_crl()
        self.broker = Mosquitto(
            MosquittoSettings(
                directory=config.broker_dir,
                port=config.broker.port,
                max_packet_size=config.broker_packet_bytes,
                max_inflight=limits.max_inflight_messages,
                max_queued=limits.max_queued_messages,
                max_queued_bytes=limits.max_queued_bytes,
                memory_limit=limits.memory_limit_bytes,
                listen=config.broker.listen,
                tls_port=config.broker.tls_port,
                ca_file=tls.ca_cert if has_tls else None,
                cert_file=tls.server_cert if has_tls else None,
                key_file=tls.server_key if has_tls else None,
                crl_file=tls.crl if has_tls else None,
                require_client_cert=config.broker.require_client_cert,
            ),
            binary=config.broker.mosquitto,
            on_log=self._broker_log,
            log_debug=config.broker.report_denied_publish,
        )
        self.broker.write_files(self.acl_rules())
        await self.broker.start()

    def _broker_log(self, lines: list[str]) -> None:
        """Count refusals; write them to the gateway's log within ``WarningBudget``'s bound
        (called on the loop, by the broker's log thread through ``call_soon_threadsafe``)."""
        loop = asyncio.get_running_loop()
        for refusal in self.refusals.feed(lines, time.time()):
            summary, write = self._warnings.admit(refusal.kind, loop.time())
            if summary is not None:
                log.warning("%s", summary)
            if write:
                log.warning(
                    "device broker refused %s: %s%s",
                    refusal.who,
                    refusal.kind,
                    f" ({refusal.detail})" if refusal.detail else "",
                )
            elif self._summary is None:
                self._summary_at_window_end(loop)

    def flush_refusal_log(self) -> None:
        """At the gateway's stop: write what the refusal log's window held back so far."""
        if self._summary is not None:
            self._summary.cancel()
            self._summary = None
        self._log_summary()

    def _summary_at_window_end(self, loop: asyncio.AbstractEventLoop) -> None:
        self._summary = loop.call_at(self._warnings.window_end, self._write_summary)

    def _write_summary(self) -> None:
        """At a window's end: sum up what it held back. A refusal may have closed that window
        meanwhile (its summary written then) and opened one that holds back too: wait for its
        end in turn."""
        self._summary = None
        loop = asyncio.get_running_loop()
        if loop.time() >= self._warnings.window_end:
            self._log_summary()
        elif self._warnings.holding:
            self._summary_at_window_end(loop)

    def _log_summary(self) -> None:
        summary = self._warnings.close()
        if summary is not None:
            log.warning("%s", summary)

    def reload_devices(self) -> int:
        """Re-read the registry, rewrite password file and ACL, and tell Mosquitto (SIGHUP).

        Revocation takes effect at once. For a password device SIGHUP is enough: Mosquitto 2.0
        re-checks every connected client against the new password file and disconnects those
        whose user is gone or whose password changed (tested in tests/gateway/test_devices.py).
        A certificate device is not re-checked on SIGHUP, and Mosquitto reads its CRL only at
        start; so when a certificate was revoked, ``revoke_sessions`` restarts the managed broker.
        A restart rather than the dynamic-security plugin (which can kick a client): the plugin
        would replace the password file and ACL this gateway already generates and tests with a
        second, stateful source of truth behind a control topic. A restart is rare (device
        removal), keeps one source, and loses nothing: persistent sessions and queued QoS 1
        messages are written to the persistence file at the clean stop and restored at start.
        """
        before = {d.username: d.cert_serial for d in self.registry.devices()}
        registered_before = set(self.registry.devices())
        self.registry.load()
        self.check()
        after = {d.username: d.cert_serial for d in self.registry.devices()}
        changed = registered_before ^ set(self.registry.devices())
        self.on_registry_change({d.customer for d in changed})
        if any(serial is not None and after.get(user) != serial for user, serial in before.items()):
            self._revoked_certificates = True
        self.rewrite_acl()
        return len(self.registry.devices())

    async def revoke_sessions(self) -> None:
        """After ``reload_devices``: close certificate sessions whose certificate was revoked."""
        if self._revoked_certificates and self.broker is not None:
            self._revoked_certificates = False
            log.warning("a device certificate was revoked: restarting the device broker")
            await self.broker.restart()

    def effect(
        self, engine: Engine, customer: str, device: str, policy_error: str | None
    ) -> DeviceEffect:
        """What the running gateway does with ``customer``/``device`` now, as it is (not as the
        files say): the command that changed the registry prints only this. ``policy_error``:
        why the customer's policy file does not load, if it does not."""
        registered = next((d for d in self.registry.devices() if d.key == (customer, device)), None)
        policy = engine.policy(customer)
        decided = policy is not None and policy.device(device) is not None
        broker = self._config().broker
        if registered is None:
            state = "decided" if decided else "removed"
        elif (customer, device) in self.problems:
            state = "not_admitted"
        elif registered.cert_serial is not None and not (
            broker.tls_port and broker.require_client_cert
        ):
            state = "no_tls_listener"
        elif policy is None:
            state = "policy_not_running"
        else:
            state = "decided" if decided else "not_in_policy"
        return DeviceEffect(
            state=state,
            policy=policy.source if policy is not None else None,
            version=policy.version if policy is not None else None,
            error=self.problems.get((customer, device)) or policy_error,
        )
