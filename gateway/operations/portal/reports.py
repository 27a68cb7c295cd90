"""The access report, built once per change of the customer's log and kept for their next page.

Building a report verifies the customer's whole tree (``gateway.rights.report``): 2 s of CPU
for 40,000 entries, and twenty sessions asking at once started twenty builds side by side.
``ReportCache`` keeps one report per customer with the state it was built at (``ReportState``:
the log's newest entry, newest checkpoint and newest key, the customer's erasures with their
notices, the policy file's digest, the public key) and serves it again only while

- the state read for the request equals the state the report was built at (nothing it says
  has changed since), or
- the report's build began after the request arrived (it read the log after anything the
  request could have seen was committed).

Otherwise the request builds anew. Builds for one customer run one at a time; requests that
arrive during a build wait and share the next one, so a customer's sessions cost at most one
build at a time, and a request is never answered from a log older than the one it arrived at.

The customer is the cache's key and part of every state: one customer's report is never served
to another. Bounded: one report per customer, ``LIMIT`` bytes of them in all (its JSON's size
as the estimate), oldest first out. A build that fails is not kept.

A build verifies the customer's tree onward from the checkpoint the previous build verified
(``trees``; ``gateway.log.onward``), so a customer whose log grows every second pays for the new
entries, not for the whole log, on each build; whatever the onward check cannot vouch for, and
at least every ``gateway.rights.held_trees.WHOLE_EVERY``, the build verifies the whole tree.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from gateway.cache import SizedCache
from gateway.log.keys import PublicKey
from gateway.log.reader import Reader
from gateway.log.results import LogState
from gateway.rights.erasure_book import list_erasures
from gateway.rights.held_trees import HeldTrees
from gateway.rights.report import render
from gateway.rights.report_model import Report
from gateway.rights.report_tally import Tallies
from policies.compiler import CompiledPolicy

__all__ = ["LIMIT", "Built", "Policies", "ReportCache", "ReportState", "report_state"]

LIMIT = 32 << 20  # bytes of reports kept (the JSON of a year's report is tens of KB)


@dataclass(frozen=True, slots=True)
class ReportState:
    """What a customer's report depends on beyond the clock; equal states, equal reports."""

    customer: str
    log: LogState
    erasures: bytes  # the customer's erasures and notices as the report lists them (JSON)
    policy: tuple[str, str] | None  # (file, SHA-256 of its bytes) of the customer's policy
    key: bytes | None  # the public key the report's verification pins


@dataclass(frozen=True, slots=True)
class Built:
    """A report as built: its data (``gateway.rights.report``), the JSON export of it, the
    state read when the build began, and the build's number for that customer."""

    state: ReportState
    number: int
    data: Report
    json: str


@dataclass
class ReportCache:
    limit: int = LIMIT
    builds: int = 0  # reports built (what the tests count)
    # Each customer's tree as the last build verified it: the next build verifies only what is
    # new (``gateway.rights.held_trees``, ``gateway.log.onward``).
    trees: HeldTrees = field(default_factory=HeldTrees)
    # Each customer's report counts as the last build left them: the next build counts only the
    # entries verified since (``gateway.rights.report_tally``).
    tallies: Tallies = field(default_factory=Tallies)
    _kept: SizedCache[str, Built] = field(init=False)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    _started: dict[str, int] = field(default_factory=dict)  # builds begun, per customer

    def __post_init__(self) -> None:
        self._kept = SizedCache(self.limit, lambda _, built: 2 * len(built.json) + 500)

    def __len__(self) -> int:
        """Reports kept."""
        return len(self._kept)

    async def get(
        self,
        customer: str,
        state: Callable[[], Awaitable[ReportState]],
        build: Callable[[], Awaitable[Report]],
    ) -> Built:
        """``customer``'s report, as of the log when this call began or later."""
        ticket = self._started.get(customer, 0)  # before the state: what "arrived" means
        now = await state()
        lock = self._locks.setdefault(customer, asyncio.Lock())
        async with lock:
            kept = self._kept.get(customer)
            # The customer is the key and in the state too: another's report is never served.
            fresh = kept is not None and (kept.state == now or kept.number > ticket)
            if kept is not None and fresh and kept.state.customer == customer:
                return kept
            number = self._started[customer] = self._started.get(customer, 0) + 1
            began = await state()  # read before the build reads: it covers at least this
            if began.customer != customer:
                raise ValueError(f"report state for {began.customer!r} asked for {customer!r}")
            data = await build()  # an error propagates, and nothing is kept
            self.builds += 1
            built = Built(began, number, data, render(data, "json", "en"))  # JSON: no language
            self._kept.put(customer, built)
            return built


def report_state(
    db: Path, customer: str, policy: CompiledPolicy | None, key: PublicKey | None
) -> ReportState:
    """Read ``customer``'s ``ReportState`` (blocking: run it on a thread), in one read
    transaction: the log through a reader bound to the customer, and their erasures with the
    notices' delivery and acknowledgement, which change without a new entry."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        conn.execute("BEGIN")
        log = Reader.over(conn, db, customer=customer).log_state()
        erasures = list_erasures(conn, customer)
        conn.execute("COMMIT")
    finally:
        conn.close()
    return ReportState(
        customer,
        log,
        orjson.dumps(erasures),
        None if policy is None else (policy.source, policy.version),
        None if key is None else key.raw,
    )


Stamp = tuple[tuple[str, int, int], ...]


class Policies:
    """The customers' compiled policies as the report states them (name, devices, grants),
    compiled again only when a policy file or the device registry changes: compiling every
    policy file was 43 ms of each report page. What changed is seen by a ``stat`` of each
    file (name, mtime in ns, size) at every call, so a report never states an old policy."""

    def __init__(self, compile_all: Callable[[], list[CompiledPolicy]]) -> None:
        self._compile_all = compile_all
        self._lock = threading.Lock()  # called on worker threads
        self._stamp: Stamp | None = None
        self._policies: dict[str, CompiledPolicy] = {}
        self.compiled = 0  # times every file was compiled (what the tests count)

    def get(self, customer: str, files: list[Path]) -> CompiledPolicy | None:
        """``customer``'s policy (None: no file of theirs loads), ``files`` being what it
        is compiled from: the policy files and the device registry."""
        stamp = _stamp(files)
        with self._lock:
            if stamp != self._stamp:
                self._policies = {p.customer: p for p in self._compile_all()}
                self._stamp = stamp
                self.compiled += 1
            return self._policies.get(customer)


def _stamp(files: list[Path]) -> Stamp:
    found = []
    for path in files:
        try:
            st = path.stat()
        except OSError:
            found.append((str(path), -1, -1))  # absent is a state too: it may appear
            continue
        found.append((str(path), st.st_mtime_ns, st.st_size))
    return tuple(found)
