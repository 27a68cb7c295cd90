"""A customer's rights over a grant at run time: consent, objection, restriction.

Which right applies depends on the grant's legal basis (GDPR Art. 6(1)):

- consent (a): the customer ``withdraw``s it (Art. 7(3)) and may ``give`` it again;
- legitimate interests (f) or a public task (e): the customer ``object``s (Art. 21(1));
- any basis: the customer asks for ``restrict``ion (Art. 18(1)), e.g. while a dispute about the
  data is settled;
- ``lift`` ends an objection or a restriction in force (the objection upheld by the customer no
  longer, the restriction's reason gone).

Each holds the grant back or releases it again, with its own words in the signed entry, its own
receipt, and its own reason in every message it withholds ("the customer objected to this use
(GDPR Art. 21)"). A withdrawal of a contract grant is refused with what the customer can do
instead: there is no consent to withdraw, and a receipt saying "consent withdrawn" would be false.

An action applies to the engine first, so the very next message is decided under it, and to
everything still queued (gateway/messages/sendtime.py). It is recorded in the customer's chain and
in ``consent_events`` (``right`` names which), from which a restarted gateway restores the state.
Repeating an action whose effect is already in force changes nothing, writes nothing, and says
so with the entry that did it. Every action names the person who took it (``by``); an action
without one is refused.

One owner: the engine holds the grants held back, and ``ConsentBook.is_withdrawn`` asks it, so
what the grant view shows is what is enforced. The book holds only what the engine cannot:
recorded events of grants no running policy has (their customer's file did not load, or its
current version dropped the grant); each is handed to the engine as soon as a policy with that
grant runs (``restore``), and then the book forgets it. The last event per grant (who, when,
which entry) is kept for the idempotent answer.

The book gets the narrow pieces it uses (``ConsentParts``, built by the composition root,
``app.py``), not the gateway: nothing here imports it.

The recorded actions are ``consent_events`` rows, read and written through
``gateway.rights.consent_events`` (the table's one owner).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pydantic import BaseModel, JsonValue

from gateway.config import Config
from gateway.errors import GatewayError
from gateway.locale import when
from gateway.log.entry import EntryDraft
from gateway.log.keys import Signer
from gateway.log.writer import LogWriter
from gateway.messages.store import Store
from gateway.rights import consent_events
from gateway.rights.consent_events import ConsentEvent, Right
from gateway.rights.moved_away import moved_away
from gateway.rights.receipts import consent_record, make_receipt
from policies.compiler import CompiledGrant
from policies.decision import LegalBasis, Reason
from policies.engine import Engine
from policies.errors import PolicyError
from policies.model import OBJECTABLE, allowed_actions

__all__ = [
    "ACTIONS",
    "ConsentBook",
    "ConsentError",
    "ConsentParts",
    "RightAnswer",
]


@dataclass(frozen=True, slots=True)
class _Action:
    right: Right | None  # None: ``lift``, whose right is the one in force
    holds: bool  # True: the grant releases nothing from now on


# The control ops, as the CLI, the TUI and the customer portal send them.
ACTIONS: dict[str, _Action] = {
    "withdraw": _Action("consent", holds=True),
    "give": _Action("consent", holds=False),
    "object": _Action("objection", holds=True),
    "restrict": _Action("restriction", holds=True),
    "lift": _Action(None, holds=False),
}
_REASONS: dict[Right, Reason] = {
    "consent": Reason("withdrawn"),
    "objection": Reason("objected"),
    "restriction": Reason("restricted"),
}
# (entry kind / receipt type, GDPR article) per right and direction.
_KINDS: dict[tuple[Right, bool], tuple[str, str]] = {
    ("consent", True): ("consent_withdrawn", "GDPR Art. 7(3)"),
    ("consent", False): ("consent_given", "GDPR Art. 6(1)(a), Art. 7"),
    ("objection", True): ("objection", "GDPR Art. 21(1)"),
    ("objection", False): ("objection_lifted", "GDPR Art. 21(1)"),
    ("restriction", True): ("restriction", "GDPR Art. 18(1)"),
    ("restriction", False): ("restriction_lifted", "GDPR Art. 18(1), 18(3)"),
}

_TEXTS: dict[str, tuple[str, str]] = {
    "consent_withdrawn": (
        "{by} hat die Einwilligung „{grant}“ am {at} widerrufen. Ab sofort erhält {recipient} "
        "dafür keine Daten mehr – auch nichts, was noch auf den Versand wartete.",
        "{by} withdrew consent '{grant}' on {at}. From now on {recipient} receives no data under "
        "it, including anything still waiting to be sent.",
    ),
    "consent_given": (
        "{by} hat die Einwilligung „{grant}“ am {at} erteilt. {recipient} erhält ab sofort, was "
        "diese Freigabe erlaubt.",
        "{by} gave consent '{grant}' on {at}. From now on {recipient} receives what this grant "
        "allows.",
    ),
    "objection": (
        "{by} hat am {at} der Weitergabe „{grant}“ an {recipient} widersprochen (Art. 21 "
        "DSGVO). Ab sofort erhält {recipient} dafür keine Daten mehr – auch nichts, was noch auf "
        "den Versand wartete.",
        "{by} objected on {at} to passing data on to {recipient} under '{grant}' (GDPR "
        "Art. 21). From now on {recipient} receives no data under it, including anything still "
        "waiting to be sent.",
    ),
    "objection_lifted": (
        "{by} hat am {at} den Widerspruch gegen „{grant}“ zurückgenommen. {recipient} erhält "
        "ab sofort wieder, was diese Freigabe erlaubt.",
        "{by} lifted the objection to '{grant}' on {at}. From now on {recipient} again receives "
        "what this grant allows.",
    ),
    "restriction": (
        "{by} hat am {at} die Einschränkung der Weitergabe „{grant}“ an {recipient} verlangt "
        "(Art. 18 DSGVO). Bis sie aufgehoben wird, erhält {recipient} dafür keine Daten – auch "
        "nichts, was noch auf den Versand wartete.",
        "{by} asked on {at} for passing data on to {recipient} under '{grant}' to be restricted "
        "(GDPR Art. 18). Until the restriction is lifted {recipient} receives no data under it, "
        "including anything still waiting to be sent.",
    ),
    "restriction_lifted": (
        "{by} hat am {at} die Einschränkung von „{grant}“ aufgehoben. {recipient} erhält ab "
        "sofort wieder, was diese Freigabe erlaubt.",
        "{by} lifted the restriction of '{grant}' on {at}. From now on {recipient} again "
        "receives what this grant allows.",
    ),
}


class RightAnswer(BaseModel):
    """The control ops' answer (``withdraw``, ``give``, ``object``, ``restrict``, ``lift``)."""

    action: str
    changed: bool  # False: already in force; nothing was written
    message: str  # one line for whoever asked, in English
    kind: str  # the entry kind / receipt type of the event in force
    entry_seq: int  # the signed entry of the event in force (new, or the earlier one)
    by: str
    at: str  # ISO 8601, UTC
    receipt: dict[str, JsonValue] | None = None  # only when this call wrote the entry
    record: dict[str, JsonValue] | None = None  # ISO/IEC TS 27560 consent record (DPV JSON-LD)


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
        # Recorded holds the engine could not take yet (no running policy has the grant).
        self._pending: dict[tuple[str, str], ConsentEvent] = {}
        # Every recorded event the engine could not take at ``load``, in order, so ``restore``
        # hands it the whole hold history, not only the latest hold (policies/onset.py).
        self._waiting: dict[tuple[str, str], list[tuple[bool, datetime, Right]]] = {}
        # The latest event per grant: the idempotent answer names it.
        self._last: dict[tuple[str, str], ConsentEvent] = {}
        self.entries = 0

    @staticmethod
    def withdrawn(conn: sqlite3.Connection) -> list[tuple[str, str, datetime]]:
        """(customer, grant, when) held back by their latest event (any right)."""
        return [(c, g, e.at) for (c, g), e in consent_events.latest(conn).items() if e.holds]

    def load(self, conn: sqlite3.Connection) -> None:
        """At start, after the policies that load are running: the recorded holds into the
        engine; those it cannot take yet wait in the book. Every event is handed back in order,
        not only the latest: when each hold began and ended decides whether a row queued before
        a restart was decided with its grant (policies/onset.py, both directions)."""
        self._last = consent_events.latest(conn)
        engine = self._parts.engine()
        taken: set[tuple[str, str]] = set()
        waiting: dict[tuple[str, str], list[tuple[bool, datetime, Right]]] = {}
        for customer, grant, holds, at, right in consent_events.history(conn):
            try:
                if holds:
                    engine.withdraw(customer, grant, at, _because(right))
                else:
                    engine.give(customer, grant, at, _REASONS[right])
            except PolicyError:
                # No running policy has this grant yet.
                waiting.setdefault((customer, grant), []).append((holds, at, right))
                continue
            taken.add((customer, grant))
        self._pending = {k: e for k, e in self._last.items() if e.holds and k not in taken}
        self._waiting = {k: events for k, events in waiting.items() if k not in taken}

    def restore(self, customer: str | None = None) -> None:
        """Hand waiting holds (of ``customer``, or all) to the engine once a running policy has
        their grant; call after every policy (re)load."""
        engine = self._parts.engine()
        for key, events in list(self._waiting.items()):
            if customer is not None and key[0] != customer:
                continue
            try:
                for holds, at, right in events:
                    if holds:
                        engine.withdraw(key[0], key[1], at, _because(right))
                    else:
                        engine.give(key[0], key[1], at, _REASONS[right])
            except PolicyError:
                continue  # no running policy has this grant yet: it keeps waiting
            del self._waiting[key]
            self._pending.pop(key, None)
        for key, event in list(self._pending.items()):
            if customer is not None and key[0] != customer:
                continue
            try:
                engine.withdraw(key[0], key[1], event.at, _because(event.right))
            except PolicyError:
                continue  # no running policy has this grant yet: it keeps waiting
            del self._pending[key]

    def is_withdrawn(self, customer: str, grant: str) -> bool:
        """Held back by any right. Asks the engine: what the grant view shows is enforced."""
        return (customer, grant) in self._parts.engine().withdrawn()

    def now(self) -> datetime:
        """The gateway's time, never before the log's newest entry: what rights are dated at
        and what the engine judges a grant's validity and consent dates at."""
        return self._parts.clock()

    def held_by(self, customer: str, grant: str) -> Right | None:
        """Which right holds the grant back now (None: it releases as its policy says)."""
        if not self.is_withdrawn(customer, grant):
            return None
        event = self._last.get((customer, grant))
        return event.right if event is not None else "consent"

    async def act(self, action: str, customer: str, grant_id: str, by: str) -> RightAnswer:
        parts = self._parts
        spec = ACTIONS.get(action)
        if spec is None:
            raise ConsentError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        by = by.strip()
        if not by:
            raise ConsentError(
                f"{action}: say who takes this action (the person's name, e.g. --by 'Anna "
                "Weber'); it is written into the signed entry and the receipt"
            )
        command = f"einblick consent {action} --customer {customer} --grant {grant_id} --by '…'"
        away = moved_away(parts.config(), customer, command)
        if away is not None:
            raise ConsentError(away)
        engine = parts.engine()
        policy = engine.policy(customer)
        if policy is None:
            raise ConsentError(f"no policy for customer {customer!r} is loaded")
        grant = next((g for g in policy.grants if g.id == grant_id), None)
        if grant is None:
            known = ", ".join(g.id for g in policy.grants) or "none"
            raise ConsentError(f"customer {customer!r} has no grant {grant_id!r} (grants: {known})")
        held = self.held_by(customer, grant_id)
        if spec.holds:
            assert spec.right is not None
            _check_basis(action, spec.right, grant)
            if held == spec.right:
                return self._unchanged(action, customer, grant_id, held, holds=True)
            if held is not None:
                raise ConsentError(
                    f"grant {grant_id!r} of {customer!r} is already held back by a {held} "
                    f"({_KINDS[(held, True)][1]}); nothing changed"
                )
            return await self._record(
                action, spec.right, holds=True, customer=customer, grant=grant, by=by
            )
        if spec.right == "consent":
            _check_basis(action, "consent", grant)
        if held is None:
            return self._unchanged(action, customer, grant_id, spec.right or "consent", holds=False)
        if (held == "consent") != (action == "give"):
            use = "give" if held == "consent" else "lift"
            raise ConsentError(
                f"grant {grant_id!r} of {customer!r} is held back by a {held}: use {use!r}"
            )
        return await self._record(action, held, holds=False, customer=customer, grant=grant, by=by)

    def _unchanged(
        self, action: str, customer: str, grant_id: str, right: Right, *, holds: bool
    ) -> RightAnswer:
        """The effect is already in force: nothing is written, and the answer says by whom."""
        event = self._last.get((customer, grant_id))
        kind = _KINDS[(right, holds)][0]
        if event is None or event.holds != holds:
            what = "in force as its policy says" if not holds else "held back"
            return RightAnswer(
                action=action,
                changed=False,
                message=f"grant {grant_id!r} of {customer!r} is already {what}; nothing changed",
                kind=kind,
                entry_seq=0,
                by="",
                at="",
            )
        return RightAnswer(
            action=action,
            changed=False,
            message=(
                f"already done: {kind.replace('_', ' ')} of grant {grant_id!r} by {event.by} "
                f"at {event.at.isoformat()} (log entry {event.entry_seq}); nothing changed"
            ),
            kind=kind,
            entry_seq=event.entry_seq,
            by=event.by,
            at=event.at.isoformat(),
        )

    async def _record(
        self,
        action: str,
        right: Right,
        *,
        holds: bool,
        customer: str,
        grant: CompiledGrant,
        by: str,
    ) -> RightAnswer:
        parts = self._parts
        engine = parts.engine()
        policy = engine.policy(customer)
        assert policy is not None
        now = parts.clock()  # an event is never dated before the log's newest entry
        if holds:
            engine.withdraw(customer, grant.id, now, _because(right))
        else:
            engine.give(customer, grant.id, now)
        self._pending.pop((customer, grant.id), None)
        self._waiting.pop((customer, grant.id), None)
        kind, article = _KINDS[(right, holds)]
        recipient = policy.recipients.get(grant.recipient) or parts.config().recipient_names().get(
            grant.recipient, grant.recipient
        )
        # The customer's clock, as their report shows it.
        moments = {lang: when(lang, now, policy.timezone) for lang in ("de", "en")}
        de, en = _TEXTS[kind]
        draft = EntryDraft.record(
            kind,
            now,
            customer=customer,
            recipient=grant.recipient,
            grant=grant.id,
            policy_version=policy.version,
            purpose=grant.purpose,
            legal_basis=str(grant.legal_basis),
            source_digest=hashlib.sha256(b"").digest(),
            reason_params={"by": by},
            text_de=de.format(by=by, grant=grant.id, at=moments["de"], recipient=recipient),
            text_en=en.format(by=by, grant=grant.id, at=moments["en"], recipient=recipient),
        )
        writer = parts.log_writer()

        def job(conn: sqlite3.Connection) -> tuple[int, int, bytes]:
            appended = writer.append([draft])[0]
            consent_events.record(
                conn,
                customer,
                grant.id,
                holds=holds,
                at=now,
                by=by,
                entry_seq=appended.seq,
                right=right,
            )
            return appended.seq, appended.index, appended.entry_hash

        seq, index, entry_hash = await parts.store.transaction(
            job, on_rollback=writer.rolled_back, on_commit=writer.committed
        )
        self.entries += 1
        self._last[(customer, grant.id)] = ConsentEvent(right, holds, now, by, seq)
        instance = parts.config().instance
        fields: dict[str, JsonValue] = {
            "type": kind,
            "article": article,
            "gateway": instance,
            "customer": customer,
            "grant": grant.id,
            "recipient": grant.recipient,
            "purpose": dict(grant.purpose),
            "legal_basis": str(grant.legal_basis),
            "by": by,
            "at": now.isoformat(),
            "log_entry": {"seq": seq, "chain_index": index, "entry_hash": entry_hash.hex()},
        }
        receipt = make_receipt(parts.signer, fields)
        return RightAnswer(
            action=action,
            changed=True,
            message=f"{kind.replace('_', ' ')} of grant {grant.id!r} recorded as log entry {seq}",
            kind=kind,
            entry_seq=seq,
            by=by,
            at=now.isoformat(),
            receipt=receipt,
            record=consent_record(fields, recipient_name=recipient, customer_name=policy.name),
        )


def _because(right: Right) -> Reason | None:
    """The engine's reason for a grant held back by ``right`` (None: its default, withdrawn)."""
    return None if right == "consent" else _REASONS[right]


def _check_basis(action: str, right: Right, grant: CompiledGrant) -> None:
    """Refuse an action the grant's legal basis does not give, saying what does apply."""
    basis = LegalBasis(grant.legal_basis)
    instead = " or ".join(f"'{a}'" for a in allowed_actions(basis))
    if right == "consent" and basis is not LegalBasis.CONSENT:
        raise ConsentError(
            f"grant {grant.id!r} rests on {basis.value}, not consent: there is no consent to "
            f"{'withdraw' if action == 'withdraw' else 'give'}. The customer can use {instead} "
            "instead (einblick consent --help)"
        )
    if right == "objection" and basis not in OBJECTABLE:
        raise ConsentError(
            f"grant {grant.id!r} rests on {basis.value}: GDPR Art. 21 gives a right to object "
            f"only to processing on legitimate interests or a public task. Use {instead} instead"
        )
