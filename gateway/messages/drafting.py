"""Decisions into log-entry drafts: each decision explained in German and English, the drafts'
shared parts remembered per decision shape (a flood of shapes evicts, bounded in bytes).

Explaining is the slow part of recording a decision and repeats a lot: the same device, grant and
outcome explain the same way, so the texts are cached under everything that goes into them. With
them is kept the rest of the draft that depends only on that key (ids, purpose, paths, reason,
counts, converted once from the decision), so a repeated shape costs one draft built from the
model plus what is the message's own: time, source digest, topic and content.

One record shape from decision to entry: the decision's key is computed once, here, and travels
with the draft (``EntryDraft.shape``), so the log writer finds the entry's stored body under the
same key instead of keying the draft a second time; the caller digests the device's message
once, however many recipients it is decided for.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import operator
from collections.abc import Mapping
from datetime import datetime

from gateway.cache import SizedCache
from gateway.log.entry import EntryDraft, draft_from_decision
from policies.decision import Decision, LegalBasis, Outcome, Reason
from policies.engine import Engine

__all__ = ["EXPLAINED_BYTES", "Drafter"]

log = logging.getLogger(__name__)

ExplainKey = tuple[object, ...]

EXPLAINED_BYTES = 16 * 1024 * 1024  # explanation texts remembered; a flood of shapes evicts
# Said when even the explanation of a failure fails: fixed words, nothing that can fail again.
_FAILED_TEXTS = (
    "Bei der Verarbeitung dieser Nachricht trat ein interner Fehler auf. Sie blieb hier und "
    "ging an niemanden.",
    "An internal error occurred while handling this message. It stayed here and went to no one.",
)


def _explained_size(key: ExplainKey, model: EntryDraft) -> int:
    """Bytes a cache entry holds, roughly: 2 per character (paths may be UCS-2), plus objects.
    The model's lists are the key's own tuples or made of the same strings: counted once."""
    chars = len(model.text_de) + len(model.text_en)
    for part in key:
        if isinstance(part, tuple):
            chars += sum(len(p) if isinstance(p, str) else 64 for p in part)
    return 2 * chars + 600


# What the explanation never reads: the released bytes and the topic they go to. Every other
# field of a decision is part of the cache key, found by walking the dataclass, so a field added
# to ``Decision`` later can never make two different decisions share one text.
_NOT_EXPLAINED = frozenset({"payload", "topic"})
_KEY_FIELDS = tuple(f.name for f in dataclasses.fields(Decision) if f.name not in _NOT_EXPLAINED)
_KEY_VALUES = operator.attrgetter(*_KEY_FIELDS)
# Values that are their own key (hashable, compared by value); anything else goes through
# ``_hashable``. Tuples pass as they are, as they always did: their items are strings and frozen
# alterations. The enums are str-valued and sit at fixed positions of the key.
_PLAIN = frozenset({str, int, bool, type(None), tuple, Outcome, LegalBasis})
# A key is never equal to a key the log writer makes from a draft's fields (``body_key``), which
# starts with the entry's kind, a string: the two can share the writer's cache of bodies.
_SHAPE = object()


def _hashable(value: object) -> object:
    # Exact types first: ``isinstance`` against the ``Mapping`` ABC cost more than the rest of
    # keying a decision (this runs for every decision recorded).
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is dict:
        if not value:
            return ()
        items: dict[object, object] = value  # type: ignore[assignment]
        return tuple(sorted((str(k), _hashable(v)) for k, v in items.items()))
    if isinstance(value, Reason):
        return (value.code, _hashable(value.params))
    if isinstance(value, Mapping):
        if not value:
            return ()
        return tuple(sorted((str(k), _hashable(v)) for k, v in value.items()))
    return value


# The fields that may hold a mapping or a reason (by their declared type), the only ones that
# need ``_hashable``: asking every field's type per decision cost more than keying the rest.
_TYPES = {f.name: str(f.type) for f in dataclasses.fields(Decision)}
_NESTED = tuple(
    position
    for position, name in enumerate(_KEY_FIELDS)
    if any(word in _TYPES[name] for word in ("Mapping", "dict", "Reason", "object", "Any"))
)


def _key(decision: Decision) -> ExplainKey:
    """Everything the explanation of ``decision`` depends on: every field but the payload's."""
    values = [_SHAPE, *_KEY_VALUES(decision)]
    plain = _PLAIN
    for position in _NESTED:
        value = values[position + 1]
        if type(value) not in plain:  # a reason may be None
            values[position + 1] = _hashable(value)
    return tuple(values)


class Drafter:
    """Explains decisions into drafts, with the texts cached."""

    def __init__(self, cache_bytes: int = EXPLAINED_BYTES) -> None:
        # The first draft of each shape: its key-derived fields are shared by the later ones.
        self._explained: SizedCache[ExplainKey, EntryDraft] = SizedCache(
            cache_bytes, _explained_size
        )

    def draft(
        self, engine: Engine, decision: Decision, source_digest: bytes, now: datetime
    ) -> EntryDraft:
        """``decision`` as an entry; ``source_digest`` is the SHA-256 of the device's message
        (taken once per message by the caller, not once per recipient)."""
        key = _key(decision)
        model = self._explained.get(key)
        if model is None:
            texts = (engine.explain(decision, "de"), engine.explain(decision, "en"))
            draft = draft_from_decision(
                decision,
                at=now,
                source_digest=source_digest,
                text_de=texts[0],
                text_en=texts[1],
                shape=key,
            )
            # The model keeps nothing of this message: no topic, content or source digest
            # (personal data must not outlive its erasure in a cache).
            model = dataclasses.replace(draft, topic=None, content=None, source_digest=bytes(32))
            self._explained.put(key, model)
            return draft
        # Equal keys mean equal fields below (the key holds every field the draft takes from
        # the decision but topic and payload): the model's converted values are shared, read
        # only, as one body row is shared by the log (``EntryDraft.shape``).
        return EntryDraft(
            kind=model.kind,
            at=now,
            customer=model.customer,
            device=model.device,
            recipient=model.recipient,
            outcome=model.outcome,
            grant=model.grant,
            policy_version=model.policy_version,
            purpose=model.purpose,
            legal_basis=model.legal_basis,
            topic=decision.topic,
            content=decision.payload,
            source_digest=source_digest,
            shared=model.shared,
            altered=model.altered,
            withheld=model.withheld,
            reason=model.reason,
            reason_params=model.reason_params,
            text_de=model.text_de,
            text_en=model.text_en,
            omitted=model.omitted,
            shape=key,
        )

    def failed(
        self, engine: Engine, topic: str, payload: bytes, exc: BaseException, now: datetime
    ) -> EntryDraft:
        """The message withheld with reason internal_error, and the traceback logged. Never
        raises: what cannot be found out (the device, the explanation) is left out."""
        log.error(
            "handling a message on topic %.200r failed (%s); it is withheld and acknowledged, "
            "and nothing of it leaves. The traceback follows; please report it.",
            topic,
            type(exc).__name__,
            exc_info=exc,
        )
        device = None
        with contextlib.suppress(Exception):
            device = engine.device_for(topic)
        decision = Decision(
            customer=device.customer if device else None,
            device=device.device if device else None,
            recipient=None,
            outcome=Outcome.WITHHELD,
            reason=Reason("internal_error", {"error": type(exc).__name__}),
            withheld=("$payload",),
            stream=device.stream if device else None,
        )
        texts = _FAILED_TEXTS
        with contextlib.suppress(Exception):
            texts = (engine.explain(decision, "de"), engine.explain(decision, "en"))
        return draft_from_decision(
            decision,
            at=now,
            source_digest=hashlib.sha256(payload).digest(),
            text_de=texts[0],
            text_en=texts[1],
        )
