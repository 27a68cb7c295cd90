"""Aggregation windows: the samples an aggregate grant takes, and the summary it releases.

An aggregate grant withholds each message and adds its numbers to the open window of its
(customer, grant, device, topic); a window closes when time passes its end (or when the
customer's policy is replaced) and ``Engine.flush`` turns it into one decision: the summary,
or, for a field with fewer than ``min_count`` samples, the reason it is withheld.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import JsonValue

from policies.compiler import CompiledDevice, CompiledGrant, CompiledPolicy
from policies.decision import Alteration, Decision, Outcome, Reason
from policies.routes import Route
from policies.treatment_specs import AggregateSpec
from policies.treatments import Accumulator, TreatmentFailed, to_number

__all__ = ["Window", "Windows", "sample", "summary"]


class Window:
    __slots__ = ("acc", "device", "end", "grant", "index", "policy", "start", "stream", "topic")

    def __init__(
        self,
        policy: CompiledPolicy,
        grant: CompiledGrant,
        device: CompiledDevice,
        stream: str,
        topic: str,
        *,
        index: int,
        size: float,
    ) -> None:
        self.policy = policy
        self.grant = grant
        self.device = device
        self.stream = stream
        self.topic = topic
        self.index = index
        self.start = datetime.fromtimestamp(index * size, tz=UTC)
        self.end = datetime.fromtimestamp((index + 1) * size, tz=UTC)
        self.acc: dict[str, Accumulator] = {}


class Windows:
    """The open windows, one per (customer, grant, device, topic), and those closed but not
    yet flushed."""

    __slots__ = ("_closed", "_open")

    def __init__(self) -> None:
        self._open: dict[tuple[str, str, str, str], Window] = {}
        self._closed: list[Window] = []

    def add(
        self,
        route: Route,
        grant: CompiledGrant,
        topic: str,
        values: dict[str, float],
        now: datetime,
    ) -> None:
        spec = grant.aggregate
        assert spec is not None
        slot = (route.policy.customer, grant.id, route.device.id, topic)
        index = int(now.timestamp() // spec.window)
        window = self._open.get(slot)
        if window is not None and window.index != index:
            self._closed.append(window)
            window = None
        if window is None:
            window = Window(
                route.policy,
                grant,
                route.device,
                route.stream,
                topic,
                index=index,
                size=spec.window,
            )
            self._open[slot] = window
        for path, number in values.items():
            window.acc.setdefault(path, Accumulator()).add(number)

    def due(self, now: datetime) -> list[Window]:
        """The windows that closed by ``now``, oldest first; they are forgotten here."""
        due, self._closed = self._closed, []
        for slot, window in list(self._open.items()):
            if window.end <= now:
                due.append(window)
                del self._open[slot]
        due.sort(key=lambda w: w.start)
        return due

    def close(self, customer: str) -> None:
        """Close the customer's open windows now (its policy was replaced): the next ``due``
        hands them out under the old policy's version."""
        for slot, window in list(self._open.items()):
            if slot[0] == customer:
                self._closed.append(window)
                del self._open[slot]


def sample(spec: AggregateSpec, root: JsonValue) -> dict[str, float]:
    """The numbers of the aggregated fields in one message body; a field that is missing or
    not a number is left out."""
    values: dict[str, float] = {}
    for path in spec.fields:
        value: JsonValue = root
        for part in path.split("."):
            value = value.get(part) if type(value) is dict else None
        if type(value) is bool:  # a flag: the mean is the share of true, the sum its count
            values[path] = 1.0 if value else 0.0
            continue
        try:
            values[path] = float(to_number(value))
        except TreatmentFailed:
            continue
    return values


def summary(window: Window, blocked: Reason | None) -> Decision:
    """The decision for a closed window; ``blocked`` is why its grant releases nothing now
    (withdrawn, outside its validity, key erased), None when it may release."""
    grant, policy = window.grant, window.policy
    spec = grant.aggregate
    assert spec is not None
    base = Decision(
        policy.customer,
        window.device.id,
        grant.recipient,
        Outcome.WITHHELD,
        grant=grant.id,
        policy_version=policy.version,
        purpose=grant.purpose,
        legal_basis=grant.legal_basis,
        stream=window.stream,
    )
    if blocked is not None:
        return _replace(base, reason=blocked, withheld=tuple(window.acc))
    # {"window": {"start": …, "end": …}, field: {function: value}}: what the recipient receives
    body: dict[str, dict[str, str] | dict[str, float]] = {
        "window": {"start": _iso(window.start), "end": _iso(window.end)}
    }
    altered = []
    problems: dict[str, Reason] = {}
    for path, functions in spec.fields.items():
        acc = window.acc.get(path)
        if acc is None:
            continue
        if acc.count < spec.min_count:
            # A summary of too few samples is the samples themselves: one sample's mean is
            # its raw value. Withheld for this window, and the customer is told why.
            problems[path] = Reason(
                "too_few_samples",
                {"field": path, "count": str(acc.count), "min": str(spec.min_count)},
            )
            continue
        results: dict[str, float] = {fn: acc.result(fn) for fn in functions}
        if not all(math.isfinite(v) for v in results.values()):
            # A sum past a double's range: orjson would write it as null, silently.
            problems[path] = Reason("out_of_range", {"field": path})
            continue
        body[path] = results
        detail = f"{', '.join(functions)}; {spec.window:g} s; {acc.count}"
        altered.append(Alteration(path, "aggregate", detail))
    if not altered:
        reason = next(iter(problems.values()), grant.nothing_reason)
        return _replace(base, reason=reason, withheld=tuple(window.acc))
    return _replace(
        base,
        outcome=Outcome.ALTERED,
        topic=window.topic,
        payload=orjson.dumps(body),
        altered=tuple(altered),
        withheld=tuple(problems),
        field_reasons=problems,
    )


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def _replace(decision: Decision, **changes: Any) -> Decision:
    return replace(decision, **changes)
