"""The per-message work of deciding, drafting and logging, step by step:
``python -m gateway.bench.permessage [--messages N] [--repeats R]``.

``einblick bench`` measures the whole gateway between two brokers, where the CPU a message costs
is mostly sockets, the event loop and the disk. This times the steps of the pipeline that are
Python work per message, each alone, on ``einblick bench``'s own load (its benchmark customer and
devices, ~200-byte JSON, one field rounded, one withheld) and on a real SQLite file:

- ``Intake.receive``: queueing an arrival, its device resolved and judged by the flood guard;
- ``Decider.decide``: the gateway's limits, then ``Engine.evaluate`` (timed alone as well);
- ``Drafter.draft``: the decision explained (texts cached per shape) into a log-entry draft;
- ``QueueShares.admit``: the release asks its customer's share of the recipient's queue;
- ``LogWriter.append`` and ``Outbox.insert``: one message per transaction, as at 1,000 msg/s on
  a quiet box (the transaction's BEGIN and COMMIT are not timed; ``synchronous=OFF``, so the
  disk is not what is measured);
- ``SendTime.settle``: the send-time check of one row before it is published.

Each figure is µs per message, the best of ``--repeats`` passes over the same messages (the
machine's other load only ever adds). Fresh engines, caches and databases per pass.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import sqlite3
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.bench.systems import DEVICES, bench_policy
from gateway.log.entry import EntryDraft
from gateway.log.keys import Signer
from gateway.log.writer import LogWriter
from gateway.messages.clock import ForwardClock
from gateway.messages.deciding import Decider
from gateway.messages.drafting import Drafter
from gateway.messages.endpoint import Inbound
from gateway.messages.flood import FloodGuard
from gateway.messages.intake import Arrival, Intake
from gateway.messages.outbox import Outbox, OutboxRow, insert, pending
from gateway.messages.pseudonyms import Keyring
from gateway.messages.quota import Admission, RecipientQueues
from gateway.messages.sendtime import SendParts, SendTime
from gateway.messages.shares import QueueShares
from gateway.messages.store import Store
from policies.compiler import CompiledPolicy, compile_policy
from policies.decision import Decision, Outcome
from policies.engine import Engine
from policies.examples import EXAMPLES, RECIPIENTS, example_path
from policies.loader import load_policy, load_policy_text
from policies.message import Message
from simulators.load import build_load

__all__ = ["STEPS", "main", "run"]

STEPS = (
    "Intake.receive",
    "Engine.evaluate",
    "Decider.decide",
    "Drafter.draft",
    "QueueShares.admit",
    "LogWriter.append",
    "Outbox.insert",
    "SendTime.settle",
)
_START = datetime(2026, 6, 3, 10, 0, tzinfo=UTC)


class _Session:
    """The device link's side of a received message: nothing to acknowledge here."""

    session_present = False
    returned = False

    def ack(self, mid: int, qos: int) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def _policies() -> list[CompiledPolicy]:
    """The example policies and the benchmark customer's, as ``einblick bench`` runs them."""
    recipients = {**RECIPIENTS, "cloud": "Cloud"}
    compiled = [compile_policy(load_policy(example_path(n)), recipients) for n in EXAMPLES]
    compiled.append(compile_policy(load_policy_text(bench_policy(DEVICES)), recipients))
    return compiled


def _messages(count: int) -> list[Inbound]:
    fleet = build_load(DEVICES, prefix="bench")
    session = _Session()
    out = []
    for i in range(count):
        topic, payload = fleet[i % DEVICES].next_message(1.7e9 + i / 1000)
        out.append(Inbound(topic, payload, 1, False, i + 1, session, float(i)))
    return out


def _timed(figures: dict[str, float], name: str, count: int, work: Callable[[], object]) -> None:
    began = time.perf_counter()
    work()
    took = (time.perf_counter() - began) / count * 1e6
    figures[name] = min(figures.get(name, took), took)


async def _one_pass(
    root: Path, policies: list[CompiledPolicy], inbound: list[Inbound], figures: dict[str, float]
) -> dict[str, int]:
    count = len(inbound)
    keyring = Keyring()
    times = [_START + timedelta(milliseconds=i) for i in range(count)]
    engine = Engine(policies, keyring)
    intake = Intake(
        engine=lambda: engine, queue_size=count + 1, batch_max=1, flood=FloodGuard(1e9, 10**9)
    )

    def receive() -> None:
        for message in inbound:
            intake.receive(message)

    _timed(figures, "Intake.receive", count, receive)
    messages = [Message(m.topic, m.payload, times[i], m.retain) for i, m in enumerate(inbound)]
    alone = Engine(policies, keyring)
    _timed(
        figures,
        "Engine.evaluate",
        count,
        lambda: [alone.evaluate(messages[i], times[i]) for i in range(count)],
    )
    decider = Decider(max_payload_bytes=65536)
    arrivals = [Arrival(m) for m in inbound]
    decisions: list[Decision] = []

    def decide() -> None:
        for i in range(count):
            decisions.extend(decider.decide(engine, arrivals[i], times[i]))

    _timed(figures, "Decider.decide", count, decide)
    digests = [hashlib.sha256(m.payload).digest() for m in inbound]
    drafter = Drafter()
    drafts: list[EntryDraft] = []

    def draft() -> None:
        for i in range(count):
            drafts.append(drafter.draft(engine, decisions[i], digests[i], times[i]))

    _timed(figures, "Drafter.draft", count, draft)
    store = Store(root / "einblick.db")
    await store.open()
    try:
        queues = RecipientQueues(
            dict.fromkeys(RECIPIENTS | {"cloud": ""}, "withhold"),
            max_rows_total=10**9,
            max_rows=None,
            max_bytes=10**12,
            disk_share=0.5,
            disk=root,
        )
        outbox = Outbox(store, queues, max_rows=10**9)
        shares = QueueShares(queues)
        taken: list[Admission] = []
        _timed(
            figures,
            "QueueShares.admit",
            count,
            lambda: [shares.admit(engine, d, taken) for d in decisions],
        )
        signer = Signer.generate()
        await store.read(lambda conn: conn.execute("PRAGMA synchronous=OFF"))
        appended, inserted = await store.read(
            lambda conn: _log_one_by_one(
                conn,
                signer=signer,
                drafts=drafts,
                decisions=decisions,
                inbound=inbound,
                figures=figures,
            )
        )
        rows: list[OutboxRow] = await store.read(
            lambda conn: pending(conn, "cloud", after=0, limit=count)
        )
        writer = await store.read(lambda conn: LogWriter(conn, signer, "bench"))
        check = SendTime(
            SendParts(
                engine=lambda: engine,
                keyring=keyring,
                store=store,
                log_writer=lambda: writer,
                outbox=outbox,
                clock=ForwardClock(lambda: None, wall=lambda: times[-1]),
                topic_prefix={},
            )
        )
        left = 0
        began = time.perf_counter()
        for row in rows:
            left += len((await check.settle([row])).leave)
        took = (time.perf_counter() - began) / max(1, len(rows)) * 1e6
        figures["SendTime.settle"] = min(figures.get("SendTime.settle", took), took)
    finally:
        await store.close()
    released = sum(1 for d in decisions if d.outcome is not Outcome.WITHHELD)
    return {
        "messages": count,
        "decisions": len(decisions),
        "released": released,
        "appended": appended,
        "inserted": inserted,
        "settled": len(rows),
        "left": left,
    }


def _log_one_by_one(
    conn: sqlite3.Connection,
    *,
    signer: Signer,
    drafts: list[EntryDraft],
    decisions: list[Decision],
    inbound: list[Inbound],
    figures: dict[str, float],
) -> tuple[int, int]:
    """Each message's entry and outbox row in a transaction of its own; only the two calls
    are timed."""
    writer = LogWriter(conn, signer, "bench")
    appending = inserting = 0.0
    appended = inserted = 0
    for draft, decision, message in zip(drafts, decisions, inbound, strict=True):
        conn.execute("BEGIN IMMEDIATE")
        began = time.perf_counter()
        entry = writer.append([draft])[0]
        middle = time.perf_counter()
        if decision.payload is not None and decision.outcome is not Outcome.WITHHELD:
            assert decision.recipient and decision.customer and decision.device
            assert decision.grant and decision.topic is not None
            inserted += len(
                insert(
                    conn,
                    [
                        (
                            entry.seq,
                            decision.recipient,
                            decision.customer,
                            decision.device,
                            decision.grant,
                            decision.topic,
                            decision.payload,
                            1,
                            decision.policy_version,
                            message.topic,
                            message.payload,
                            False,
                            None,
                        )
                    ],
                )
            )
        ended = time.perf_counter()
        conn.execute("COMMIT")
        writer.committed()
        appended += 1
        appending += middle - began
        inserting += ended - middle
    count = max(1, len(drafts))
    for name, took in (("LogWriter.append", appending), ("Outbox.insert", inserting)):
        figures[name] = min(figures.get(name, took / count * 1e6), took / count * 1e6)
    return appended, inserted


def run(count: int, repeats: int) -> tuple[dict[str, float], dict[str, int]]:
    """(µs per message of each step, best of ``repeats``; what the last pass counted)."""
    policies = _policies()
    inbound = _messages(count)
    figures: dict[str, float] = {}
    counts: dict[str, int] = {}
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="einblick-permessage-") as root:
            counts = asyncio.run(_one_pass(Path(root), policies, inbound, figures))
    return figures, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    figures, counts = run(args.messages, args.repeats)
    print(
        f"{counts['messages']:,} messages of einblick bench's load, best of {args.repeats} "
        f"passes ({counts['released']:,} released, {counts['appended']:,} entries appended, "
        f"{counts['inserted']:,} outbox rows, {counts['settled']:,} rows settled)"
    )
    for name in STEPS:
        print(f"{name:<20} {figures[name]:8.2f} µs/message")
    print(f"{'sum':<20} {sum(figures[n] for n in STEPS if n != 'Engine.evaluate'):8.2f} µs/message")


if __name__ == "__main__":
    main()
