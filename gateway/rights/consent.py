"""Consent given and withdrawn at run time, recorded as signed log entries with receipts.

A withdrawal applies to the engine first, so the very next message is decided under it, and to
everything still queued (the forwarder asks the engine before each send). The event is then
recorded in the customer's chain and in ``consent_events``, from which a restarted gateway
restores the state.

The ``consent_events`` table is created and upgraded in ``gateway.log.migrations``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from gateway.errors import GatewayError
from gateway.locale import when
from gateway.log.entry import EntryDraft
from gateway.rights.receipts import make_receipt

if TYPE_CHECKING:
    from gateway.app import Gateway

__all__ = ["ConsentBook", "ConsentError"]

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


class ConsentBook:
    def __init__(self) -> None:
        self._withdrawn: set[tuple[str, str]] = set()
        self.entries = 0

    @staticmethod
    def withdrawn(conn: sqlite3.Connection) -> list[tuple[str, str, datetime]]:
        """(customer, grant, when) whose latest event is a withdrawal."""
        rows = conn.execute(
            "SELECT customer, grant_id, action, at FROM consent_events e WHERE id = "
            "(SELECT MAX(id) FROM consent_events WHERE customer = e.customer AND grant_id = e.grant_id)"
        ).fetchall()
        return [
            (c, g, datetime.fromtimestamp(at, UTC))
            for c, g, action, at in rows
            if action == "withdraw"
        ]

    def load(self, conn: sqlite3.Connection) -> None:
        self._withdrawn = {(c, g) for c, g, _ in self.withdrawn(conn)}

    def is_withdrawn(self, customer: str, grant: str) -> bool:
        return (customer, grant) in self._withdrawn

    async def change(
        self, gateway: Gateway, action: str, customer: str, grant_id: str, by: str
    ) -> dict[str, Any]:
        policy = next((p for p in gateway.engine.policies() if p.customer == customer), None)
        if policy is None:
            raise ConsentError(f"no policy for customer {customer!r} is loaded")
        grant = next((g for g in policy.grants if g.id == grant_id), None)
        if grant is None:
            known = ", ".join(g.id for g in policy.grants) or "none"
            raise ConsentError(f"customer {customer!r} has no grant {grant_id!r} (grants: {known})")
        now = gateway.clock.now()  # a consent event is never dated before the log's newest
        if action == "withdraw":
            gateway.engine.withdraw(customer, grant_id, now)
            self._withdrawn.add((customer, grant_id))
        else:
            gateway.engine.give(customer, grant_id, now)
            self._withdrawn.discard((customer, grant_id))
        recipient = gateway.config.recipient_names().get(grant.recipient, grant.recipient)
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
        writer = gateway.writer

        def job(conn: sqlite3.Connection) -> tuple[int, int, bytes]:
            appended = writer.append([draft])[0]
            conn.execute(
                "INSERT INTO consent_events (customer, grant_id, action, at, by, entry_seq) VALUES (?, ?, ?, ?, ?, ?)",
                (customer, grant_id, action, now.timestamp(), by, appended.seq),
            )
            return appended.seq, appended.index, appended.entry_hash

        seq, index, entry_hash = await gateway.store.transaction(
            job, on_rollback=writer.rolled_back, on_commit=writer.committed
        )
        self.entries += 1
        receipt = make_receipt(
            gateway.signer,
            {
                "type": "consent_withdrawn" if action == "withdraw" else "consent_given",
                "gateway": gateway.config.instance,
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
