"""Send time means the current policy: a queued row is decided again before it leaves.

A row waits in the outbox for as long as its recipient is away, possibly hours. Meanwhile the
customer's policy may change (a field removed from a grant, a recipient changed), a consent may
be withdrawn, a grant may expire, and the grant's allowed hours may end. What leaves must be what
the policy in force *at send time* allows, exactly, and the log must say so.

Cost: deciding a row again means parsing and walking its payload once more, so it is done only
when something it depended on changed. Each row stores the policy version it was decided under
and the device message it was decided from (``outbox.version``, ``source_topic``, ``source``,
``retain``). Right before a batch is published, each row is checked in O(1): is the customer's
running policy still that version, does the grant still hold (consent, validity, erasure of
keys: ``Engine.still_allowed``), and is now inside the grant's hours (for a release held to the
end of its unit and leaving on time, at its decision: gateway/messages/sendtime_rules.py)? A row
that passes leaves as decided, with no new entry. A row that does not is decided again from its
stored source against the current policy, consents and clock, and

- if the current policy releases something to the row's recipient, exactly that leaves (its
  topic and payload replace the row's), after a signed entry "re-decided at send time under
  version X" that explains the new decision field by field;
- otherwise the row is deleted and a signed entry "withheld at send time, because …" says why.

Both happen in one transaction before anything is published (no record, no forward).

Deciding again uses an engine of its own holding only the customer's current policy and its
withdrawals, made per row: evaluating on the running engine would count the row a second time in
rate limits and aggregation windows. Consequences, fail-closed: a rate limit is not applied to a
row decided again (it was spaced when first decided), a grant that now aggregates withholds the
row (its window lives in the running engine), and a Sparkplug DATA row is withheld (the
BIRTH that names its metrics is in the running engine's state, not in the row).

Rows without a stored source (aggregation windows' summaries; rows queued by an earlier release)
cannot be decided again: they leave only while the grant that made them is unchanged in the
current policy and still holds; otherwise they are withheld. In a cluster, a row whose device topic
another instance's customer now takes (contested.py) is withheld, ``claimed_elsewhere``. While
the system clock is behind the log's time, a row whose grant (or one overlapping it) is judged
differently at the two moments is withheld, ``clock_behind`` (``policies.moments``).

Overlapping grants. A row is released under one grant, but where several grants give its
recipient the same device stream, each leaf leaves in the most protective treatment any
*applying* one gives it (policies/combine.py). So a row is also decided again when another of
those grants began to apply after the decision (its hours began, its validity started, its
consent was given again or an objection or restriction lifted: ``policies.onset``, O(overlapping
grants) per row). Whether that changes the row is judged by the engine deciding it again, the
code that combined the grants at decision time: if the row's grant releases exactly what the
row holds, it leaves with no new entry (its entry is still true); otherwise what the current
grants release together leaves, after an entry naming the grant that began to apply and why, or
nothing leaves, and the entry says so. A summary row is left alone (a summary is already the
most protective form); a row without its source is withheld, as above.

The other direction: a grant that applied at the decision and stopped applying while the row
waited (its hours or validity ended, it was withdrawn, objected to or restricted:
``policies.onset.stopped_applying``; an erased pseudonym key is not such a cause) may have made
the row more protective than the current policy. The row is decided again the same way; if it
changes, what the grants applying now release leaves, after an entry naming the grant that
stopped applying and why. A row that cannot be decided again (no stored source, a Sparkplug DATA
row) leaves as decided while its own grant holds: more protective than needed, never less.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from gateway.cache import SizedCache
from gateway.log.entry import EntryDraft, at_from_us, draft_from_decision
from gateway.log.writer import LogWriter
from gateway.messages.clock import GatewayClock
from gateway.messages.outbox import Outbox, OutboxRow
from gateway.messages.pseudonyms import Keyring
from gateway.messages.sendtime_rules import behind, evaluate_alone, hours_at, same_release, stale
from gateway.messages.sendtime_text import change_key, entry_texts, explain_key, explained_size
from gateway.messages.store import Store
from policies.compiler import CompiledGrant, CompiledPolicy
from policies.decision import Decision, Outcome, Reason
from policies.engine import Engine
from policies.onset import Change, Onset, Stop, all_apply, began_applying, stopped_applying

__all__ = ["SendParts", "SendTime", "Settled"]

EXPLAINED_BYTES = 4 * 1024 * 1024  # explanation texts remembered; other shapes evict them
_NO_GRANT = Reason("no_grant")
_NOT_LOADED = Reason("policy_not_loaded")
_ELSEWHERE = Reason("claimed_elsewhere")  # in a cluster, another instance's customer's topic
# rows to decide again, why, when their hours are judged, why the clock withholds (sendtime_rules)
_Redo = list[tuple[OutboxRow, tuple[Change, ...], datetime, Reason | None]]


@dataclass(frozen=True, slots=True)
class Settled:
    """A batch after the send-time check: rows to publish (possibly decided again, in id order)
    and rows withheld (already deleted from the outbox, recorded, and off the queue counts)."""

    leave: list[OutboxRow]
    withheld: list[OutboxRow]


@dataclass(frozen=True, slots=True)
class SendParts:
    """What the check uses (built by the composition root, ``app.py``)."""

    engine: Callable[[], Engine]
    keyring: Keyring
    store: Store
    log_writer: Callable[[], LogWriter]
    outbox: Outbox
    clock: GatewayClock  # never before the log's newest entry (and the moments also judged at)
    topic_prefix: Mapping[str, str]  # per recipient, as the pipeline prefixes released topics
    owed: frozenset[str] = frozenset()  # grant ids owed whatever the policy says (erasure notices)


@dataclass(slots=True)
class _Outcome:
    row: OutboxRow
    decision: Decision
    replaced: OutboxRow | None  # None: withheld
    # decided again because these grants began (stopped) to apply; empty: for another cause
    onset: tuple[Change, ...] = ()
    # After an onset, what follows the lead: the decision's explanation ("explain"), that the
    # summary lacks it ("summary"), nothing ("lead"), or why not again ("no_source", "no_birth").
    then: str = "explain"
    maybe_sent: bool = False  # an earlier attempt may have delivered it (sendtime_text MAYBE_SENT)


@dataclass(slots=True)
class SendTime:
    parts: SendParts
    entries: int = 0  # entries written (for the checkpoint's "anything new?")
    redecided: int = 0
    withheld: int = 0
    _explained: SizedCache[tuple[object, ...], dict[str, str]] = field(
        default_factory=lambda: SizedCache(EXPLAINED_BYTES, explained_size)
    )

    def onset(
        self, engine: Engine, row: OutboxRow, now: datetime, *, hours: datetime | None = None
    ) -> tuple[Onset, ...]:
        """The grants for the row's recipient that began to apply after the row was decided
        (``policies.onset``); none also for rows it cannot concern (see the module text).
        ``hours``: the moment allowed hours are judged at, if not ``now`` (``sendtime_rules``)."""
        if row.grant in self.parts.owed:
            return ()
        policy = engine.policy(row.customer)
        grant = policy.grant(row.grant) if policy is not None else None
        if policy is None or grant is None or not grant.overlaps:
            return ()
        if row.source is None and grant.aggregate is not None:
            return ()  # a summary: already the most protective form (policies.combine)
        return began_applying(
            engine, policy, row.grant, at_from_us(row.created), now, hours_at=hours
        )

    def stop(
        self,
        engine: Engine,
        row: OutboxRow,
        now: datetime,
        *,
        hours: datetime | None = None,
        applying: dict[tuple[str, str], bool] | None = None,
    ) -> tuple[Stop, ...]:
        """The grants for the row's recipient that applied when the row was decided and no longer
        do (``policies.onset``); none also for rows without their source: those cannot be
        decided again, and leave as decided while their own grant holds (the module text).
        ``applying`` remembers, for one batch (one ``now``), the grants whose overlapping grants
        all apply now: their rows need no look at when each was decided (only for rows whose
        hours are judged ``now``)."""
        if row.source is None or row.source_topic is None or row.grant in self.parts.owed:
            return ()
        policy = engine.policy(row.customer)
        grant = policy.grant(row.grant) if policy is not None else None
        if policy is None or grant is None or not grant.overlaps:
            return ()
        if hours is None or hours == now:
            key = (row.customer, row.grant)
            every = applying.get(key) if applying is not None else None
            if every is None:
                every = all_apply(engine, policy, row.grant, now)
                if applying is not None:
                    applying[key] = every
            if every:
                return ()
        return stopped_applying(
            engine, policy, row.grant, at_from_us(row.created), now, hours_at=hours
        )

    async def settle(
        self,
        rows: Sequence[OutboxRow],
        reachable_us: int | None = None,
        attempted: Callable[[OutboxRow], bool] = lambda row: False,
    ) -> Settled:
        """Check ``rows`` (one recipient's, in id order) right before they are published to a
        recipient reachable since ``reachable_us`` (µs since the epoch; None: not known);
        ``attempted``: whether an earlier attempt may have delivered one (asked only of the rows
        recorded)."""
        now, also = self.parts.clock.now(), self.parts.clock.also_at()
        engine = self.parts.engine()
        redo = self._to_redo(engine, rows, now, reachable_us, also)
        if not redo:
            return Settled(list(rows), [])
        decided = [
            self._decide_again(engine, row, now, hours, onset, clock=clock)
            for row, onset, hours, clock in redo
        ]
        outcomes = [o for o in decided if o is not None]
        if not outcomes:
            return Settled(list(rows), [])
        for outcome in outcomes:
            outcome.maybe_sent = attempted(outcome.row)
        await self._record(engine, outcomes, now)
        replaced = {o.row.id: o.replaced for o in outcomes}
        leave: list[OutboxRow] = []
        withheld: list[OutboxRow] = []
        for row in rows:
            new = replaced.get(row.id, row)  # not decided again: leaves as it is
            if new is None:
                withheld.append(row)
            else:
                leave.append(new)
        return Settled(leave, withheld)

    def settled_now(self, rows: Sequence[OutboxRow]) -> Settled | None:
        """``settle`` with no transaction, for the forwarder's committing turn: every row leaves
        as decided, or None (one must be decided again: ``settle`` does, before any leaves)."""
        clock = self.parts.clock
        redo = self._to_redo(self.parts.engine(), rows, clock.now(), None, clock.also_at())
        return None if redo else Settled(list(rows), [])

    def checked(self) -> tuple[Engine, int]:
        """What a check judged under besides the clock: once it moved, check rows again."""
        return (engine := self.parts.engine()), engine.generation

    def _to_redo(
        self,
        engine: Engine,
        rows: Sequence[OutboxRow],
        now: datetime,
        reachable_us: int | None,
        also: Sequence[datetime | None],
    ) -> _Redo:
        """Rows that may not leave as decided, with the grants that began or stopped to apply;
        ``also``: the other moments grants are judged at while the system clock is behind
        ``now`` (``sendtime_rules.behind``)."""
        redo: _Redo = []
        applying: dict[tuple[str, str], bool] = {}
        owed = self.parts.owed
        # Whether a row is stale, and whether its grant overlaps another, depends on its
        # customer, grant and version alone: asked once per stream of the batch. A held row
        # leaving on time is judged on its own (its hours at its decision: sendtime_rules).
        judged: dict[tuple[str, str, str | None], tuple[bool, bool, CompiledGrant | None]] = {}
        disowned = engine.disowned  # in a cluster (gateway/messages/contested.py)
        for row in rows:
            if disowned is not None and row.source_topic and disowned(row.source_topic):
                redo.append((row, (), now, None))
                continue
            key = (row.customer, row.grant, row.version)
            found = judged.get(key)
            if found is None:
                policy = engine.policy(row.customer)
                grant = policy.grant(row.grant) if policy is not None else None
                old = row.grant not in owed and stale(engine, policy, grant, row, now, hours=now)
                # A row whose grant overlaps no other grant can have none begin or stop applying
                # beside it (``onset`` and ``stop`` both answer so): the common case.
                alone = grant is not None and not grant.overlaps
                found = judged[key] = (old, alone, grant)
            old, alone, grant = found
            hours = now if row.release_at is None else hours_at(row, grant, now, reachable_us)
            clock = (
                behind(engine, row, now, also, hours) if also and row.grant not in owed else None
            )
            if clock is not None:
                redo.append((row, (), hours, clock))  # withheld: the clock disagrees with the log
                continue
            if hours is not now and row.grant not in owed:
                policy = engine.policy(row.customer)
                old = stale(engine, policy, grant, row, now, hours=hours)
            if old:
                redo.append((row, (), hours, None))
                continue
            if alone:
                continue
            # every grant that began and every one that stopped: the entry names them all
            changed: tuple[Change, ...] = self.onset(engine, row, now, hours=hours)
            changed += self.stop(engine, row, now, hours=hours, applying=applying)
            if changed:
                redo.append((row, changed, hours, None))
        return redo

    # -- deciding again ---------------------------------------------------------------------------

    def _decide_again(
        self,
        engine: Engine,
        row: OutboxRow,
        now: datetime,
        hours: datetime,
        onset: tuple[Change, ...] = (),
        *,
        clock: Reason | None = None,
    ) -> _Outcome | None:
        """The row's outcome under the current policy, its allowed hours judged at ``hours``
        (``clock``: why the clock withholds it, from ``_to_redo``); None: it leaves as decided,
        unrecorded (only after an ``onset`` that changes nothing)."""
        policy = engine.policy(row.customer)
        if policy is None:
            return self._withhold(row, None, _NOT_LOADED)
        if engine.disowned is not None and engine.disowned(row.source_topic or ""):
            return self._withhold(row, policy, _ELSEWHERE)  # queued before that was known
        if clock is not None:
            return self._withhold(row, policy, clock, policy.grant(row.grant))
        if onset:
            return self._began(engine, policy, row, now, hours=hours, onset=onset)
        if row.source is None or row.source_topic is None or row.version is None:
            return self._without_source(engine, policy, row, now, hours)
        decision = evaluate_alone(engine, policy, row, now, hours, keys=self.parts.keyring)
        if decision is None:
            return self._withhold(row, policy, _NO_GRANT)
        if decision.outcome is Outcome.WITHHELD or decision.payload is None:
            return _Outcome(row, decision, None)
        assert decision.topic is not None
        new = replace(
            row,
            topic=self.parts.topic_prefix.get(row.recipient, "") + decision.topic,
            payload=decision.payload,
            grant=decision.grant or row.grant,
            version=policy.version,
        )
        return _Outcome(row, decision, new)

    def _began(
        self,
        engine: Engine,
        policy: CompiledPolicy,
        row: OutboxRow,
        now: datetime,
        *,
        hours: datetime,
        onset: tuple[Change, ...],
    ) -> _Outcome | None:
        """Another grant for the recipient began (or stopped) to apply: the engine decides the
        row again with the grants applying now; unchanged, the row leaves as decided."""
        grant = policy.grant(row.grant)
        if row.source is None or row.source_topic is None:
            outcome = self._withhold(row, policy, _NO_GRANT, grant)
            return replace(outcome, onset=onset, then="no_source")
        decision = evaluate_alone(engine, policy, row, now, hours, keys=self.parts.keyring)
        no_birth = (
            decision is not None
            and decision.reason is not None
            and (decision.reason.code == "no_birth")
        )
        if no_birth and all(isinstance(change, Stop) for change in onset):
            return None  # cannot be decided again: it leaves as decided, more protective
        if decision is None or decision.grant != row.grant or decision.payload is None:
            # Nothing of the row's grant leaves where both apply: withheld, in its own name. The
            # reason is explained only when it is the row's grant's own (or a summary's).
            then = "lead"
            reason = decision.reason if decision is not None else None
            if reason is not None and reason.code == "aggregating":
                then = "summary"
            elif reason is not None and reason.code == "no_birth":
                then = "no_birth"  # its BIRTH is in the running engine, not in the row
            elif decision is not None and decision.grant == row.grant:
                then = "explain"
            outcome = self._withhold(row, policy, reason or _NO_GRANT, grant)
            return replace(outcome, onset=onset, then=then)
        assert decision.topic is not None
        topic = self.parts.topic_prefix.get(row.recipient, "") + decision.topic
        if topic == row.topic and decision.payload == row.payload:
            return None  # the grants together release what the row holds: its entry is true
        new = replace(row, topic=topic, payload=decision.payload, version=policy.version)
        return _Outcome(row, decision, new, onset)

    def _without_source(
        self, engine: Engine, policy: CompiledPolicy, row: OutboxRow, now: datetime, hours: datetime
    ) -> _Outcome:
        """A summary or an earlier release's row: it leaves unchanged only while the grant that
        made it is the same in the current policy and holds now."""
        grant = policy.grant(row.grant)
        reason = engine.still_allowed(row.customer, row.grant, now)
        if reason is None and grant is not None and grant.hours is not None:
            reason = None if grant.in_hours(hours) else grant.hours_reason
        summary = () if grant is None else same_release(grant, row)
        if reason is None and summary and grant is not None:
            # Unchanged and still allowed: decided again under this version, field by field.
            decision = Decision(
                row.customer,
                row.device,
                row.recipient,
                Outcome.ALTERED,
                grant=row.grant,
                policy_version=policy.version,
                purpose=grant.purpose,
                legal_basis=grant.legal_basis,
                topic=row.topic,
                payload=row.payload,
                altered=summary,
            )
            return _Outcome(row, decision, replace(row, version=policy.version))
        return self._withhold(row, policy, reason or _NO_GRANT, grant)

    def _withhold(
        self,
        row: OutboxRow,
        policy: CompiledPolicy | None,
        reason: Reason,
        grant: CompiledGrant | None = None,
    ) -> _Outcome:
        decision = Decision(
            row.customer,
            row.device,
            row.recipient,
            Outcome.WITHHELD,
            grant=row.grant,
            policy_version=policy.version if policy is not None else None,
            purpose=grant.purpose if grant else {},
            legal_basis=grant.legal_basis if grant else None,
            withheld=("$payload",),
            reason=reason,
        )
        return _Outcome(row, decision, None)

    # -- recording --------------------------------------------------------------------------------

    async def _record(self, engine: Engine, outcomes: list[_Outcome], now: datetime) -> None:
        drafts = [self._draft(engine, o, now) for o in outcomes]
        writer = self.parts.log_writer()
        gone = [o.row.id for o in outcomes if o.replaced is None]
        there: set[int] = set()  # rows still in the outbox: an erasure may have taken some

        def job(conn: sqlite3.Connection) -> None:
            appended = writer.append(drafts)
            for outcome, entry in zip(outcomes, appended, strict=True):
                if outcome.replaced is not None:
                    outcome.replaced = replace(outcome.replaced, entry_seq=entry.seq)
            box = self.parts.outbox
            there.update(box.replace_with(conn, [o.replaced for o in outcomes if o.replaced]))
            there.update(box.delete_with(conn, gone))

        def counted() -> None:
            # On the COMMIT, before a cancellation (a forwarder stopped) can be raised after it.
            writer.committed()
            self.entries += len(drafts)
            for outcome in outcomes:
                row, new = outcome.row, outcome.replaced
                if row.id not in there:
                    continue  # an erasure took it, and its room, meanwhile
                if new is None:
                    self.withheld += 1
                    self.parts.outbox.gone(row.recipient, [(row.customer, len(row.payload))])
                else:
                    self.redecided += 1
                    self.parts.outbox.resized(
                        row.recipient, row.customer, len(row.payload), len(new.payload)
                    )

        await self.parts.store.transaction(job, on_rollback=writer.rolled_back, on_commit=counted)

    def _draft(self, engine: Engine, outcome: _Outcome, now: datetime) -> EntryDraft:
        decision = outcome.decision
        row = outcome.row
        source = row.source if row.source is not None else row.payload
        policy = engine.policy(row.customer)
        grant = policy.grant(decision.grant or row.grant) if policy is not None else None
        inside = grant is not None and grant.in_hours(at_from_us(row.created))
        key = (  # texts name fields, never values: rows decided alike read alike, explained once
            outcome.replaced is None,
            inside,
            outcome.maybe_sent,
            outcome.row.grant,
            change_key(outcome.onset, outcome.then) if outcome.onset else None,
            *explain_key(decision),
        )
        texts = self._explained.get(key)
        if texts is None:
            texts = entry_texts(
                engine,
                decision,
                customer=outcome.row.customer,
                recipient=outcome.row.recipient,
                grant=outcome.row.grant,
                changes=outcome.onset,
                replaced=outcome.replaced is not None,
                then=outcome.then,
                inside=inside,
                maybe_sent=outcome.maybe_sent,
            )
            self._explained.put(key, texts)
        return draft_from_decision(
            decision,
            at=now,
            source_digest=hashlib.sha256(source).digest(),
            text_de=texts["de"],
            text_en=texts["en"],
            supersedes=None if outcome.maybe_sent else row.entry_seq,  # maybe sent: both count
        )
