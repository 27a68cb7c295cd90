"""Consent given and withdrawn at run time, recorded as signed log entries with receipts.

A withdrawal applies to the engine first, so the very next message is decided under it, and to
everything still queued (the forwarder asks the engine before each send). The event is then
recorded in the customer's chain and in ``consent_events``, from which a restarted gateway
restores the state.

One owner: the engine holds the withdrawals in force, and ``ConsentBook.is_withdrawn`` asks it,
so what the grant view shows is what is enforced. The book holds only what the engine cannot:
recorded withdrawals of grants no running policy has (their customer's file did not load, or its
current version dropped the grant); each is handed to the engine as soon as a policy with that
grant runs (``restore``), and then the book forgets it.

The book gets the narrow pieces it uses (``ConsentParts``, built by the composition root,
``app.py``), not the gateway: nothing here imports it.

The ``consent_events`` table is created and upgraded in ``gateway.log.migrations``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.config import Config
from gateway.errors import GatewayError
from gateway.locale import when
from gateway.log.entry import EntryDraft, at_from_us, us_from_at
from gateway.log.keys import Signer
from gateway.log.writer import LogWriter
from gateway.messages.store import Store
from gateway.rights.receipts import make_receipt
from policies.engine import Engine
from policies.errors import PolicyError

__all__ = ["ConsentBook", "ConsentError", "ConsentParts"]

_TEXTS = {
    "withdraw": (
        "{by} hat die Einwilligung „{grant}“ am {at} widerrufen. Ab sofort erhält {recipient} "
        "dafür keine Daten mehr – auch nichts, was noch auf den Versand wartete.",
        "{by} withdrew consent '{grant}' on {at}. From now on {recipient} receives no data under "
        "it, including anything still waiting to be sent.",
    ),
    "give": (
        "{by} hat die Einwilligung „{grant}“ am {at} erteilt. {recipient} erhält ab sofort, was "
        "diese Freigabe erlaubt.",
        "{by} gave consent '{grant}' on {at}. From now on {recipient} receives what this grant "
        "allows.",
    ),
}


class ConsentError(GatewayError):
    """A consent change names a customer or grant the gateway does not know."""


@dataclass(frozen=True, slots=True)
class ConsentParts:
    """What a consent change uses. Getters, because the engine and the log writer exist only
    once the gateway has started, and a reload may replace the configuration."""

    store: Store
    engine: Callable[[], Engine]
    log_writer: Callable[[], LogWriter]
    signer: Signer
    config: Callable[[], Config]
    clock: Callable[[], datetime]  # never before the log's newest entry


class ConsentBook:
    def __init__(self, parts: ConsentParts) -> None:
        self._parts = parts
        # Recorded withdrawals the engine could not take yet (no running policy has the grant).
        self._pending: dict[tuple[str, str], datetime] = {}
        self.entries = 0

    @staticmethod
    def withdrawn(conn: sqlite3.Connection) -> list[tuple[str, str, datetime]]:
        """(customer, grant, when) whose latest event is a withdrawal."""
        rows = conn.execute(
            "SELECT customer, grant_id, action, at FROM consent_events e WHERE id = "
            "(SELECT MAX(id) FROM consent_events WHERE customer = e.customer AND grant_id = e.grant_id)"
        ).fetchall()
        return [(c, g, at_from_us(at)) for c, g, action, at in rows if action == "withdraw"]

    def load(self, conn: sqlite3.Connection) -> None:
        """At start, after the policies that load are running: the recorded withdrawals into
        the engine (the one query for them); those it cannot take yet wait in the book."""
        self._pending = {(c, g): at for c, g, at in self.withdrawn(conn)}
        self.restore()

    def restore(self, customer: str | None = None) -> None:
        """Hand waiting withdrawals (of ``customer``, or all) to the engine once a running
        policy has their grant; call after every policy (re)load."""
        engine = self._parts.engine()
        for key, at in list(self._pending.items()):
            if customer is not None and key[0] != customer:
                continue
            try:
                engine.withdraw(key[0], key[1], at)
            except PolicyError:
                continue  # no running policy has this grant yet: it keeps waiting
            del self._pending[key]

    def is_withdrawn(self, customer: str, grant: str) -> bool:
        """Asks the engine: what the grant view shows is what is enforced."""
        return (customer, grant) in self._parts.engine().withdrawn()

    async def change(self, action: str, customer: str, grant_id: str, by: str) -> dict[str, Any]:
        parts = self._parts
        engine = parts.engine()
        policy = engine.policy(customer)
        if policy is None:
            raise ConsentError(f"no policy for customer {customer!r} is loaded")
        grant = next((g for g in policy.grants if g.id == grant_id), None)
        if grant is None:
            known = ", ".join(g.id for g in policy.grants) or "none"
            raise ConsentError(f"customer {customer!r} has no grant {grant_id!r} (grants: {known})")
        now = parts.clock()  # a consent event is never dated before the log's newest
        if action == "withdraw":
            engine.withdraw(customer, grant_id, now)
        else:
            engine.give(customer, grant_id, now)
        self._pending.pop((customer, grant_id), None)
        recipient = parts.config().recipient_names().get(grant.recipient, grant.recipient)
        # The customer's clock, as their report shows it.
        moments = {lang: when(lang, now, policy.timezone) for lang in ("de", "en")}
        de, en = _TEXTS[action]
        draft = EntryDraft(
            kind="consent_withdrawn" if action == "withdraw" else "consent_given",
            at=now,
            customer=customer,
            device=None,
            recipient=grant.recipient,
            outcome=None,
            grant=grant_id,
            policy_version=policy.version,
            purpose=dict(grant.purpose),
            legal_basis=str(grant.legal_basis),
            topic=None,
            content=None,
            source_digest=hashlib.sha256(b"").digest(),
            shared=(),
            altered=(),
            withheld=(),
            reason=None,
            reason_params={"by": by},
            text_de=de.format(by=by, grant=grant_id, at=moments["de"], recipient=recipient),
            text_en=en.format(by=by, grant=grant_id, at=moments["en"], recipient=recipient),
        )
        writer = parts.log_writer()

        def job(conn: sqlite3.Connection) -> tuple[int, int, bytes]:
            appended = writer.append([draft])[0]
            conn.execute(
                "INSERT INTO consent_events (customer, grant_id, action, at, by, entry_seq) VALUES (?, ?, ?, ?, ?, ?)",
                (customer, grant_id, action, us_from_at(now), by, appended.seq),
            )
            return appended.seq, appended.index, appended.entry_hash

        seq, index, entry_hash = await parts.store.transaction(
            job, on_rollback=writer.rolled_back, on_commit=writer.committed
        )
        self.entries += 1
        receipt = make_receipt(
            parts.signer,
            {
                "type": "consent_withdrawn" if action == "withdraw" else "consent_given",
                "gateway": parts.config().instance,
                "customer": customer,
                "grant": grant_id,
                "recipient": grant.recipient,
                "purpose": dict(grant.purpose),
                "legal_basis": str(grant.legal_basis),
                "by": by,
                "at": now.isoformat(),
                "log_entry": {"seq": seq, "chain_index": index, "entry_hash": entry_hash.hex()},
            },
        )
        return {"entry_seq": seq, "receipt": receipt}
