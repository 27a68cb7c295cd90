"""Running an erasure: the running gateway's ``forget`` control op and ``einblick forget`` on a
stopped gateway, both around the one transaction ``gateway.rights.erasure.erase``.

The running gateway first clears the subject's retained messages on the device broker (a fresh
subscription receives them; an empty retained publish deletes each), then erases, tells the
forwarders, and truncates the WAL. A stopped gateway cannot clear retained messages: its answer
says so, and the notices wait in the outbox until it runs again.

Before erasing, both reach the copies of a handed-over customer that earlier instances keep
until their clean-up (``old_copies``, gateway/operations/old_copies.py): each copy still
holding personal data is named in the erasure's entry and answer as pending, never counted as
erased.

The running gateway's ``forget`` gets the narrow pieces it uses (``ErasureParts``, built by the
composition root, ``app.py``), not the gateway: nothing here imports it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from gateway.config import Config
from gateway.devices.broker_files import topic_filter
from gateway.devices.registry import RegisteredDevice
from gateway.log.keys import Signer
from gateway.log.schema import ensure_schema as ensure_log_schema
from gateway.log.writer import LogWriter
from gateway.messages.endpoint import Endpoint, Inbound, MqttError
from gateway.messages.mqtt import MqttConnection
from gateway.messages.outbox import Outbox
from gateway.messages.pseudonyms import Keyring
from gateway.messages.store import Store, connect
from gateway.rights.erasure import (
    ErasureDone,
    ErasureError,
    ErasureRequest,
    Forgotten,
    PendingCopy,
    _subject_counts,
    erase,
)
from gateway.rights.erasure_book import ErasureBook, list_erasures
from gateway.rights.moved_away import moved_away
from policies.engine import Engine

__all__ = ["ErasureParts", "clear_retained", "forget", "forget_offline"]

# The erasure module's logger by name: an installer's log filter for erasures keeps working.
log = logging.getLogger("gateway.rights.erasure")


@dataclass(frozen=True, slots=True)
class ErasureParts:
    """What the running gateway's ``forget`` uses. Getters, because the engine and the log
    writer exist only once the gateway has started and a reload may replace the configuration."""

    store: Store
    engine: Callable[[], Engine]
    log_writer: Callable[[], LogWriter]
    keyring: Keyring
    signer: Signer
    config: Callable[[], Config]
    devices: Callable[[], Iterable[RegisteredDevice]]  # the registry's devices
    # A helper connection to the device broker for clearing retained messages, or None while
    # the gateway's own link to it is down (then nothing is cleared, as before).
    device_broker: Callable[[], Endpoint | None]
    book: ErasureBook
    # After the commit: the erased rows' room back, and the notices to the forwarders.
    outbox: Outbox
    # Removes what it can of the customer's copies on earlier instances (a handover's old
    # copies awaiting their clean-up); returns the ones still holding personal data.
    old_copies: Callable[[str], Awaitable[tuple[PendingCopy, ...]]]


def _device_filters(
    engine: Engine, devices: Iterable[RegisteredDevice], customer: str, device: str | None
) -> list[str]:
    """MQTT filters covering the topics the subject's devices publish on."""
    patterns: dict[str, list[str]] = {}
    policy = engine.policy(customer)
    if policy is not None:
        for declared in policy.devices:
            patterns[declared.id] = [t.pattern.pattern for t in declared.topics]
    for registered in devices:
        if registered.customer == customer and registered.device not in patterns:
            patterns[registered.device] = [p for p, _ in registered.topics]
    chosen = patterns.items() if device is None else [(device, patterns.get(device, []))]
    return list(dict.fromkeys(topic_filter(p) for _, found in chosen for p in found))


async def clear_retained(endpoint: Endpoint, filters: Sequence[str], settle: float = 0.5) -> int:
    """Delete retained messages under ``filters`` on the device broker; returns how many.

    A fresh subscription receives every retained message at once; publishing an empty retained
    message to its topic deletes it (MQTT 3.1.1, 3.3.1.3).
    """
    if not filters:
        return 0
    found: list[str] = []

    def collect(message: Inbound) -> None:
        if message.retain and message.payload:
            found.append(message.topic)

    link = MqttConnection(endpoint, on_message=collect)
    try:
        await link.open()
        for topic in filters:
            await link.subscribe(topic, 1)
        await asyncio.sleep(settle)
        topics = list(dict.fromkeys(found))
        await asyncio.gather(*(link.publish(t, b"", 1, retain=True) for t in topics))
    finally:
        await link.close()
    return len(topics)


async def forget(parts: ErasureParts, customer: str, device: str | None, by: str) -> Forgotten:
    """The ``forget`` control op: erase, notify, scrub; answers with what was done."""
    if not by.strip():
        raise ErasureError("say at whose request the data is erased (--by)")
    store, writer, config, engine = parts.store, parts.log_writer(), parts.config(), parts.engine()
    away = moved_away(config, customer, _forget_command(customer, device))
    if away is not None:
        raise ErasureError(away)
    policy = engine.policy(customer)
    chain_id, device_id, _ = await store.read(
        lambda conn: _subject_counts(conn, customer, device), offload=True
    )
    if policy is None and chain_id is None:
        raise ErasureError(f"nothing is known about customer {customer!r}: no policy, no log")
    if (
        device is not None
        and device_id is None
        and not any(d.id == device for d in (policy.devices if policy else ()))
    ):
        known = ", ".join(d.id for d in policy.devices) if policy else "none"
        raise ErasureError(f"customer {customer!r} has no device {device!r} (devices: {known})")
    retained = 0
    filters = _device_filters(engine, parts.devices(), customer, device)
    endpoint = parts.device_broker() if filters else None
    if endpoint is not None:
        try:
            retained = await clear_retained(endpoint, filters)
        except MqttError as exc:
            log.error("erasure: retained messages on the device broker not cleared: %s", exc)
    # Before the entry is written: it names every copy this erasure could not reach. A copy
    # only shrinks (its tree is closed there), so what is named pending may be gone by the
    # time someone reads it, but nothing named erased is still held.
    pending = await parts.old_copies(customer)
    request = ErasureRequest(customer, device, by, datetime.now(UTC), retained)
    prefixes = {r.name: r.topic_prefix for r in config.recipients}
    grants = [g.recipient for g in policy.grants] if policy is not None else []

    def job(conn: sqlite3.Connection) -> ErasureDone:
        done = erase(
            conn,
            writer,
            parts.keyring,
            parts.signer,
            request,
            instance=config.instance,
            recipients=prefixes,
            policy_recipients=grants,
            names=config.recipient_names(),
            timezone=policy.timezone if policy is not None else "UTC",
            copies_pending=pending,
        )
        writer.checkpoint(request.at)
        return done

    async with parts.outbox.erasing():  # no row of the batch a forwarder holds leaves after it
        done = await store.transaction(
            job, on_rollback=writer.rolled_back, on_commit=writer.committed, offload=True
        )
        # The erased rows' room back, then the notices (owed whatever the recipient's quota).
        parts.outbox.erased(customer, done.queued_by_recipient, done.queued_bytes_by_recipient)
    parts.outbox.added(done.notices)
    listed = await store.read(lambda conn: list_erasures(conn, customer))
    parts.book.add(next(e for e in listed if e["erasure"] == done.id))
    scrubbed = False
    for _ in range(20):  # a reader holding an old snapshot keeps the WAL; try again shortly
        scrubbed = await store.read(lambda conn: writer.scrub(), offload=True)
        if scrubbed:
            break
        await asyncio.sleep(0.1)
    if not scrubbed:
        log.warning("erasure: the WAL could not be truncated yet (a reader holds it)")
    return done.forgotten(scrubbed=scrubbed)


# -- a stopped gateway ------------------------------------------------------------------------------


def _forget_command(customer: str, device: str | None) -> str:
    return (
        f"einblick forget --customer {customer}"
        + (f" --device {device}" if device else "")
        + " --by '…'"
    )


def forget_offline(
    config: Config,
    customer: str,
    device: str | None,
    by: str,
    *,
    known_recipients: Sequence[str],
    copies_pending: Sequence[PendingCopy] = (),
) -> Forgotten:
    """Erase on the database of a stopped gateway with the same code as the control op.

    Notices wait in the outbox until the gateway runs again. Retained messages on the device
    broker cannot be cleared while it is down; the answer says so. ``copies_pending``: what the
    caller found of earlier instances' copies still holding the customer's data (the command
    reaches them first, gateway/operations/old_copies.py), named in the entry.
    """
    if not by.strip():
        raise ErasureError("say at whose request the data is erased (--by)")
    path: Path = config.database_path
    if not path.exists():
        raise ErasureError(f"{path}: no database: nothing has been recorded yet")
    away = moved_away(config, customer, _forget_command(customer, device), running=False)
    if away is not None:
        raise ErasureError(away)
    signer = Signer.load(config.signing_key_path)
    conn = connect(path)
    try:
        ensure_log_schema(conn)
        chain_id, device_id, _ = _subject_counts(conn, customer, device)
        if chain_id is None:
            raise ErasureError(f"the log holds nothing of customer {customer!r}")
        if device is not None and device_id is None:
            raise ErasureError(f"the log holds nothing of device {device!r} of {customer!r}")
        writer = LogWriter(conn, signer, config.instance)
        request = ErasureRequest(customer, device, by, datetime.now(UTC))
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = erase(
                conn,
                writer,
                None,
                signer,
                request,
                instance=config.instance,
                recipients={r.name: r.topic_prefix for r in config.recipients},
                policy_recipients=known_recipients,
                names=config.recipient_names(),
                copies_pending=copies_pending,
            )
            writer.checkpoint(request.at)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            writer.rolled_back()
            raise
        writer.committed()
        scrubbed = writer.scrub()
    finally:
        conn.close()
    return done.forgotten(scrubbed=scrubbed, retained_pending=True)
