"""Retention in the running gateway: each customer's limits, applied periodically and recorded.

A customer's limits come from their policy's ``retention`` key by key, else from the box's
default in einblick.yaml (``retention_for``): one computation, which the retention job, ``einblick
records`` (Art. 30) and the status all use. The job (``apply``) runs as an offloaded store job,
off the hot path: per customer it deletes the content older than ``content_days``
(``LogWriter.drop_content``), drops entries older than ``entries_years`` behind a signed anchor
(``LogWriter.compact``), and, when anything was removed, appends a signed ``retention`` entry to
that customer's log saying what was removed and the cut-offs, in German and English. Every chain
and every customer's bundle still verifies afterwards (tests/gateway/test_retention.py).
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from babel.numbers import format_decimal
from pydantic import BaseModel, ConfigDict

from gateway.errors import GatewayError
from gateway.locale import tr, when
from gateway.log.chain import GATEWAY_CHAIN
from gateway.log.entry import EntryDraft
from gateway.log.reader import Reader
from gateway.log.writer import LogWriter
from gateway.messages.store import Store
from policies.model import RetentionSpec

__all__ = [
    "RetentionDone",
    "RetentionRun",
    "RetentionStatus",
    "RetentionTask",
    "apply",
    "retention_for",
    "years_before",
]

log = logging.getLogger(__name__)

_LOCALES = {"de": "de_DE", "en": "en_GB"}


def retention_for(box: RetentionSpec, policy: RetentionSpec | None) -> RetentionSpec:
    """A customer's limits: their policy's, key by key, else the box's default."""
    if policy is None:
        return RetentionSpec(content_days=box.content_days, entries_years=box.entries_years)
    return RetentionSpec(
        content_days=policy.content_days if policy.content_days is not None else box.content_days,
        entries_years=policy.entries_years
        if policy.entries_years is not None
        else box.entries_years,
    )


def years_before(now: datetime, years: int) -> datetime:
    """The same calendar day ``years`` earlier (29 February becomes the 28th)."""
    try:
        return now.replace(year=now.year - years)
    except ValueError:
        return now.replace(year=now.year - years, day=28)


class RetentionRun(BaseModel):
    """The last run that removed something from one customer's log, as status shows it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer: str
    content_before: str | None  # payloads recorded before this were removed (ISO 8601)
    entries_before: str | None  # entries before this were compacted (ISO 8601)
    contents: int
    topics: int
    entries: int
    at: str  # when the run was (ISO 8601)


class RetentionStatus(BaseModel):
    """The retention task's part of ``einblick status`` (carried there as JSON values)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    every_s: float
    runs: int
    last_run: str | None  # UTC, ISO 8601; None before the first run
    last_error: str | None
    removed: dict[str, RetentionRun]  # by customer


@dataclass(frozen=True, slots=True)
class RetentionDone:
    """What one run removed from one customer's log."""

    customer: str
    content_before: datetime | None
    entries_before: datetime | None
    contents: int
    topics: int
    entries: int

    @property
    def removed(self) -> bool:
        return bool(self.contents or self.topics or self.entries)

    def as_dict(self) -> dict[str, str | int | None]:
        return {
            "customer": self.customer,
            "content_before": _iso(self.content_before),
            "entries_before": _iso(self.entries_before),
            "contents": self.contents,
            "topics": self.topics,
            "entries": self.entries,
        }


def _texts(done: RetentionDone, rule: RetentionSpec) -> tuple[str, str]:
    texts: dict[str, str] = {}
    for lang in ("de", "en"):
        locale = _LOCALES[lang]
        parts: list[str] = []
        if done.contents or done.topics:
            assert done.content_before is not None
            parts.append(
                tr(
                    lang,
                    "retention.entry.content",
                    n=format_decimal(done.contents, locale=locale),
                    topics=format_decimal(done.topics, locale=locale),
                    days=format_decimal(rule.content_days or 0, locale=locale),
                    before=when(lang, done.content_before),
                )
            )
        if done.entries:
            assert done.entries_before is not None
            parts.append(
                tr(
                    lang,
                    "retention.entry.entries",
                    n=format_decimal(done.entries, locale=locale),
                    years=format_decimal(rule.entries_years or 0, locale=locale),
                    before=when(lang, done.entries_before),
                )
            )
        parts.append(tr(lang, "retention.entry.proof"))
        texts[lang] = " ".join(parts)
    return texts["de"], texts["en"]


def apply(writer: LogWriter, customer: str, rule: RetentionSpec, now: datetime) -> RetentionDone:
    """Apply ``rule`` to ``customer``'s log at ``now`` inside the open transaction; when
    anything was removed, append the signed ``retention`` entry saying what and up to when."""
    content_before = None if rule.content_days is None else now - timedelta(days=rule.content_days)
    entries_before = None if rule.entries_years is None else years_before(now, rule.entries_years)
    contents = topics = entries = 0
    if content_before is not None:
        contents, topics = writer.drop_content(customer, content_before)
    if entries_before is not None:
        entries = writer.compact(entries_before, chains=[customer])
    done = RetentionDone(customer, content_before, entries_before, contents, topics, entries)
    if done.removed:
        text_de, text_en = _texts(done, rule)
        params = {k: str(v) for k, v in done.as_dict().items() if k != "customer" and v is not None}
        writer.append(
            [
                EntryDraft.record(
                    "retention",
                    now,
                    customer=customer,
                    legal_basis="legal_obligation",  # storage limitation, GDPR Art. 5(1)(e)
                    reason="retention",
                    reason_params=params,
                    text_de=text_de,
                    text_en=text_en,
                )
            ]
        )
    return done


def _customers(conn: sqlite3.Connection) -> list[str]:
    """Every customer with a log (the gateway's own chain has no customer's data)."""
    names = Reader.over(conn, Path("(the gateway's log)")).chain_names().values()
    return sorted(name for name in names if name != GATEWAY_CHAIN)


class RetentionTask:
    """Applies every customer's retention every ``every_s`` seconds, one offloaded job per run.

    ``rules`` gives the limits of customers with a running policy; a customer whose policy is
    gone (or does not load) keeps the box's default, so an unloaded policy never stops retention.
    """

    def __init__(
        self,
        store: Store,
        writer: Callable[[], LogWriter],
        *,
        box: RetentionSpec,
        rules: Callable[[], Mapping[str, RetentionSpec]],
        clock: Callable[[], datetime],
        every_s: float,
    ) -> None:
        self._store = store
        self._writer = writer
        self._box = box
        self._rules = rules
        self._clock = clock
        self.every_s = every_s
        self.runs = 0
        self.last_run: datetime | None = None
        self.last_error: str | None = None
        self.removed: dict[str, RetentionRun] = {}  # customer -> the last run that removed

    def configure(self, box: RetentionSpec, every_s: float) -> None:
        """A reloaded configuration: the box's default and the interval apply from the next run."""
        self._box = box
        self.every_s = every_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                await self.run_once()
            except GatewayError as exc:
                self.last_error = str(exc)
                log.error("retention not applied (tried again in %.0f s): %s", self.every_s, exc)

    async def run_once(self) -> list[RetentionDone]:
        writer = self._writer()
        rules = dict(self._rules())
        now = self._clock()

        def job(conn: sqlite3.Connection) -> list[RetentionDone]:
            done = []
            for customer in _customers(conn):
                rule = rules.get(customer) or retention_for(self._box, None)
                if rule.content_days is None and rule.entries_years is None:
                    continue
                done.append(apply(writer, customer, rule, now))
            if any(d.removed for d in done):
                writer.checkpoint(now)  # the retention entries are signed at once
            return done

        done = await self._store.transaction(
            job, on_rollback=writer.rolled_back, on_commit=writer.committed, offload=True
        )
        self.runs += 1
        self.last_run = now
        self.last_error = None
        for item in done:
            if item.removed:
                self.removed[item.customer] = RetentionRun(
                    customer=item.customer,
                    content_before=_iso(item.content_before),
                    entries_before=_iso(item.entries_before),
                    contents=item.contents,
                    topics=item.topics,
                    entries=item.entries,
                    at=now.isoformat(),
                )
                log.info(
                    "retention for %s: %d payloads, %d topics, %d entries removed",
                    item.customer,
                    item.contents,
                    item.topics,
                    item.entries,
                )
        return done

    def status(self) -> RetentionStatus:
        return RetentionStatus(
            every_s=self.every_s,
            runs=self.runs,
            last_run=None if self.last_run is None else self.last_run.astimezone(UTC).isoformat(),
            last_error=self.last_error,
            removed=dict(self.removed),
        )


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()
