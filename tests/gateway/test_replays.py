"""Retained messages on a new session (gateway/messages/replays.py): one the log already holds a
decision of is acknowledged, not decided again; the live test drops the gateway's session on a
real Mosquitto while the retained message stays, as an external broker that loses sessions does."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.errors import StoreError
from gateway.messages.clock import elapsed
from gateway.messages.endpoint import Endpoint
from gateway.messages.flood import FloodGuard
from gateway.messages.intake import Arrival
from gateway.messages.mqtt import MqttConnection
from gateway.operations.status_text import render_status
from tests.gateway import test_sendtime
from tests.gateway.fake_link import FakeLink
from tests.gateway.harness import running_gateway
from tests.gateway.test_retained import (
    BEN_TOPIC,
    anna_messages,
    retained_while_withdrawn,
    wait_until,
)
from tests.gateway.test_rights import DEVICES, POLICY

READING = orjson.dumps({"temperature": 180.2, "door_open": True})


async def test_only_a_retained_message_on_a_new_session_the_log_holds_is_recognised(
    tmp_path: Path,
) -> None:
    async with test_sendtime.open_bench(tmp_path, test_sendtime.POLICY, test_sendtime.NOON) as b:
        await b.queued(orjson.loads(READING))
        check = b.replays
        new, kept = FakeLink(), FakeLink(session_present=True)
        topic = test_sendtime.TOPIC
        batch = [
            new.deliver(topic, READING),  # live: always decided
            new.deliver(topic, READING, retain=True),  # decided before: recognised
            new.deliver(topic, READING + b" ", retain=True),  # other bytes: decided
            new.deliver("bakery/oven-2/telemetry", READING, retain=True),  # no such device
            kept.deliver(topic, READING, retain=True),  # a kept session's: the sweeper's part
        ]
        assert await check.decided(batch) == {1}
        assert check.stats.replays_skipped == 1
        # Through the pipeline: the recognised one is acknowledged and writes nothing, and a
        # handover's fence waiting for it passes (it is settled, though not committed again).
        entries = len(await b.texts())
        stats = b.pipeline.stats
        async with asyncio.timeout(5), asyncio.TaskGroup() as tasks:
            fence = tasks.create_task(
                b.pipeline.committed_through(stats.committed + stats.replayed + 1), name="fence"
            )
            while not b.pipeline._fences:  # the fence waits (registered on its first step)
                await asyncio.sleep(0)
            assert not fence.done()
            await b.pipeline.process([Arrival(new.deliver(topic, READING, retain=True))])
        assert len(await b.texts()) == entries
        assert stats.replayed == 1


async def test_a_fence_is_not_passed_by_a_replay_before_the_live_message_ahead_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fences count messages in arrival order: a batch of a live message and then a replay
    settles both with its commit, not the replay first."""
    async with test_sendtime.open_bench(tmp_path, test_sendtime.POLICY, test_sendtime.NOON) as b:
        await b.queued(orjson.loads(READING))
        new, topic, stats = FakeLink(), test_sendtime.TOPIC, b.pipeline.stats
        live_due = stats.committed + stats.replayed + 1  # the live message's count
        passed_early: list[bool] = []
        commit = b.pipeline._commit_messages
        waiting: list[asyncio.Future[None]] = []

        async def checking(*args: Any) -> Any:
            passed_early.append(any(f.done() for f in waiting))
            return await commit(*args)

        monkeypatch.setattr(b.pipeline, "_commit_messages", checking)
        async with asyncio.timeout(5), asyncio.TaskGroup() as tasks:
            fence = tasks.create_task(b.pipeline.committed_through(live_due), name="fence")
            while not b.pipeline._fences:  # the fence waits (registered on its first step)
                await asyncio.sleep(0)
            waiting.extend(f for _, f in b.pipeline._fences)
            batch = [new.deliver(topic, READING), new.deliver(topic, READING, retain=True)]
            await b.pipeline.process([Arrival(m) for m in batch])
        assert passed_early == [False] and fence.done()
        assert stats.replayed == 1


async def test_a_lookup_the_database_refuses_is_tried_again_not_decided_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Decided again unseen, a message withheld before could be forwarded: the batch waits for
    the database (as a commit does) instead of ending the gateway or skipping the lookup."""
    async with test_sendtime.open_bench(tmp_path, test_sendtime.POLICY, test_sendtime.NOON) as b:
        await b.queued(orjson.loads(READING))
        read = b.store.read
        failures = [StoreError("einblick.db: read failed: disk I/O error")]
        shown: list[str | None] = []

        async def failing_once(query: Any, *, offload: bool = False) -> Any:
            shown.append(b.pipeline.failing_closed)  # what `einblick status` says meanwhile
            if failures:
                raise failures.pop()
            return await read(query, offload=offload)

        monkeypatch.setattr(b.store, "read", failing_once)
        flood = b.replays.flood = FloodGuard(rate=100.0, burst=2)
        new = FakeLink()
        found = await b.replays.decided([new.deliver(test_sendtime.TOPIC, READING, retain=True)])
        assert found == {0} and failures == []
        assert shown == [
            None,
            "cannot look up retained messages in the log: einblick.db: read failed: disk I/O error",
        ]
        assert b.pipeline.failing_closed is None  # answered again
        # Nothing was acknowledged while it waited (at least the retry's 0.2 s): the devices'
        # messages the broker now hands over at once are credited, not taken for a flood.
        now = elapsed()
        assert all(flood.allow(("baeckerei-schmidt", "oven-1"), now) for _ in range(10))


async def test_a_dropped_session_does_not_forward_a_retained_message_decided_before(
    tmp_path: Path,
) -> None:
    # Issue 15: published while consent was withdrawn, the retained copy was forwarded once the
    # consent was given again as soon as the broker dropped the gateway's session.
    edits = {"broker:\n": "broker:\n  limits:\n    retained_sweep_s: 60\n"}
    async with running_gateway(tmp_path, {"weber.yaml": POLICY}, DEVICES, config_edits=edits) as h:
        await retained_while_withdrawn(h)
        # Someone connects with the gateway's client id and a clean session: the broker ends the
        # gateway's connection and discards its session (subscriptions, queue); the retained
        # message stays. The gateway reconnects to a new session and subscribes again.
        before = h.gateway.device_link.connection
        user = h.gateway.config.broker.gateway_username
        password = h.gateway.devices.gateway_password()
        intruder = MqttConnection(
            Endpoint("127.0.0.1", h.port, user, username=user, password=password),
            on_message=lambda _: None,
            clean_session=True,
        )
        await intruder.open()
        await intruder.close()

        def reconnected() -> bool:
            link = h.gateway.device_link.connection
            return link is not before and link is not None and h.gateway.device_link.connected

        await wait_until(reconnected)
        link = h.gateway.device_link.connection
        assert link is not None and link.session_present is False  # a new session
        ben = await h.device("familie-weber", "phone-ben")
        await ben.publish(BEN_TOPIC, orjson.dumps({"place": "B", "batt": 80}), 1)
        # The fence: the re-sent message came right after the SUBSCRIBE, before Ben's; both go
        # to the same recipient through one outbox, in order.
        await h.cloud.wait_for(1)
        await ben.close()
        assert anna_messages(h) == []
        assert h.gateway.retained.stats.replays_skipped == 1
        # ... and `einblick status` tells the installer why nothing left for it.
        assert "1 recognised as decided already" in render_status(h.gateway.status())
        assert h.gateway.pipeline is not None
        assert h.gateway.pipeline.stats.committed == 2  # Anna's once, Ben's once
