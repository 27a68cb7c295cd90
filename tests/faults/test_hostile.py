"""Hostile devices against a real gateway: bad bodies, bad topics, oversized packets, a flood."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson
import pytest

from tests.faults.raw import RawClient, remaining_length
from tests.faults.site import Site, body, check_upstream_fields, stream
from tests.faults.summary import record

pytestmark = pytest.mark.fault

SECRET = b"SECRET-7f3a"
TOPIC = "factory/press-1/telemetry"

# Each body carries SECRET somewhere no grant reaches; none of it may ever arrive upstream.
BODIES: list[bytes] = [
    b'{"seq": 1, "force_kn": 12, "operator": "SECRET-7f3a"',  # truncated
    b"[" * 100_000 + b"]" * 100_000,  # nesting far beyond any parser's limit
    b'{"a":' * 500 + b'"SECRET-7f3a"' + b"}" * 500,  # deep, but parseable
    b'{"seq": 1e999, "force_kn": 123456789012345678901234567890123, "operator": "SECRET-7f3a"}',
    b'{"seq": -1e-999, "force_kn": 1.7976931348623157e309, "badge": "SECRET-7f3a"}',
    # Duplicate keys: the last wins (as in Python's json); a granted field's value may leave.
    b'{"seq": 1, "seq": 2, "force_kn": 1, "force_kn": "last", "operator": "SECRET-7f3a"}',
    b'{"seq": NaN, "force_kn": Infinity, "energy_kwh": -Infinity, "operator": "SECRET-7f3a"}',
    b'{"seq": 1, "operator": "SECRET-7f3a \xff\xfe"}',  # invalid UTF-8
    b'{"seq": 1, "force_kn": "\xc3\x28", "badge": "SECRET-7f3a"}',  # invalid UTF-8, granted field
    b'{"seq": 1, "force_kn": "\\ud800", "operator": "SECRET-7f3a"}',  # a lone surrogate
    b'{"seq": 1, "force_kn": "\\u0000granted", "badge": "SECRET-7f3a"}',
    # An object where a number goes: `keep` keeps the value, whatever it is (see README).
    b'{"seq": 1, "force_kn": {"operator": "kept-whole"}, "operator": "SECRET-7f3a"}',
    b'{"seq": [1, {"operator": "kept-whole"}], "force_kn": 2, "badge": "SECRET-7f3a"}',
    b'{"seq.operator": "SECRET-7f3a", "seq[0]": "SECRET-7f3a", "": "SECRET-7f3a", "seq": 3}',
    b'{"$payload": "SECRET-7f3a", "*": "SECRET-7f3a", "force_kn": 4}',
    b'[1, 2, {"operator": "SECRET-7f3a"}]',
    b'"SECRET-7f3a"',
    b"SECRET-7f3a plain text",
    b"",
    b"null",
    # Over 256 KiB but within the broker's packet limit (payload limit + MQTT overhead): it
    # reaches the gateway and is withheld with a reason. A bigger packet is refused (BAD_PACKETS).
    b'{"pad": "' + b"x" * (300 * 1024) + b'", "operator": "SECRET-7f3a"}',
    b'{"seq": 5, "force_kn": 5, "pad": "' + b"y" * (300 * 1024) + b'"}',  # over 256 KiB
    b"\x00\x01\x02SECRET-7f3a\xff" * 1000,
]

# Topics a device may try; the broker refuses each (not this device's, or not a topic at all).
BAD_TOPICS = [
    b"factory/press-1/telemetry/../../press-2/telemetry",
    b"../factory/press-1/telemetry",
    b"factory/press-1/../press-2/telemetry",
    b"factory/press-2/telemetry",  # the neighbour's
    b"factory/press-1/telemetry/extra",
    b"$SYS/broker/uptime",
    b"factory/+/telemetry",  # wildcards are not allowed in a topic name
    b"factory/#",
    b"#",
    b"factory/press-1/telemetry\x00",  # NUL
    b"factory/press-1/telemetr\xff",  # invalid UTF-8
    b"",
]

# Packets that lie or break the protocol: the broker must hang up, the gateway must not notice.
# (packet, whether the broker must hang up at once)
BAD_PACKETS = [
    (b"\x32" + remaining_length(268_435_455), False),  # claims 256 MB, sends nothing: it waits
    # 10 MiB announced: over the device broker's packet limit, which follows the pipeline's.
    (b"\x32" + remaining_length(10 * 1024 * 1024), True),
    (b"\x32\xff\xff\xff\xff\x7f", True),  # a remaining length of five bytes
    (b"\x32\x05\x00\x20fac", True),  # topic length beyond the packet
    (b"\x36\x04\x00\x01a\x00", True),  # QoS 3
    (b"\xf0\x00", True),  # reserved packet type
    (b"\x10\x00", True),  # a second CONNECT
]


async def test_bad_bodies_and_topics_are_withheld_or_refused_and_nothing_leaks(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path)
    started = time.monotonic()
    try:
        await site.setup()
        await site.start_gateway()
        device = site.device("press-1")
        for seq, body in enumerate(BODIES):
            await device.publish(seq, TOPIC, body)
        await device.drain(timeout=60)
        # Bad topics and packets, written by hand (paho refuses to send most of them). The
        # broker drops what the ACL denies and hangs up on what breaks the protocol.
        password = site.passwords["press-1"]
        for topic in BAD_TOPICS:
            attacker = RawClient(site.config.broker.port, "werk-nord.press-1", password)
            try:
                assert await attacker.connect() == 0
                await attacker.publish(topic, b'{"seq": 99, "operator": "SECRET-7f3a"}')
                await attacker.closed_by_broker(0.2)
            finally:
                await attacker.close()
        for packet, hangs_up in BAD_PACKETS:
            attacker = RawClient(site.config.broker.port, "werk-nord.press-1", password)
            try:
                assert await attacker.connect() == 0
                await attacker.send(packet)
                closed = await attacker.closed_by_broker(3.0 if hangs_up else 0.5)
                assert closed or not hangs_up, f"the broker kept talking after {packet[:20]!r}"
            finally:
                await attacker.close()
        # Still running, and a good message still gets through.
        good = orjson.dumps({"seq": 1000, "force_kn": 7, "operator": "SECRET-7f3a"})
        await device.publish(len(BODIES), TOPIC, good)
        await device.drain()
        await site.wait_until(
            lambda: any(
                m.payload == b'{"seq":1000,"force_kn":7}' for m in site.spies["oven-maker"].received
            ),
            20,
            "the good message after the bad ones",
        )
        # The good message, sent last, is the fence at every upstream: each recipient gets its
        # outbox in order, so anything a bad input had let through would have arrived before it.
        await site.wait_until(
            lambda: all(
                any(orjson.loads(m.payload).get("seq") == 1000 for m in spy.received)
                for spy in site.spies.values()
            ),
            20,
            "the good message at every upstream",
        )
        for spy in site.spies.values():
            for message in spy.received:
                assert SECRET not in message.payload, message.payload[:200]
                assert message.topic.startswith(("presses/", "energy/")), message.topic
        check_upstream_fields(site, exact=False)
        status = await site.status()
        assert status["pipeline"]["committed"] >= len(BODIES) + 1
        result = await site.audit([device])
        row = record(
            "hostile bodies and topics",
            result.summary,
            faults=0,
            bad_inputs=len(BODIES) + len(BAD_TOPICS) + len(BAD_PACKETS),
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, result.problems
        assert row.lost == 0 and row.offered == len({*BODIES, good})
        reasons = result.summary["reasons"]
        assert reasons.get("too_large", 0) >= 2, reasons
        assert reasons.get("not_json", 0) >= 1 and reasons.get("invalid_utf8", 0) >= 1, reasons
        log_text = site.gateway_log.read_text(errors="replace")
        assert "Traceback" not in log_text, log_text[-3000:]
        assert SECRET.decode() not in log_text
        await device.close()
    finally:
        await site.teardown()


async def test_a_device_flooding_at_ten_times_its_rate_is_limited_and_others_are_unaffected(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path)
    started = time.monotonic()
    try:
        await site.setup(pipeline="  device_max_rate: 20\n  device_burst: 20\n")
        await site.start_gateway()
        flooder, neighbour = site.device("press-1"), site.device("press-2")
        seconds = 5.0
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(stream(flooder, "press-1", int(200 * seconds), 200.0), name="flood")
            tasks.create_task(stream(neighbour, "press-2", int(10 * seconds), 10.0), name="calm")
        await site.wait_until(site.outbox_empty, 30, "the outbox to drain")
        # A fence from the calm device, sent last: each recipient gets its outbox in order, so
        # once the fence is at every upstream, everything decided before it has arrived too.
        fence = int(10 * seconds)
        await neighbour.publish(fence, "factory/press-2/telemetry", body("press-2", fence))
        await neighbour.drain()
        await site.wait_until(
            lambda: all(
                # The flooder sends the same seq numbers: only press-2's own fence counts.
                any(
                    "press-2" in m.topic and orjson.loads(m.payload)["seq"] == fence
                    for m in spy.received
                )
                for spy in site.spies.values()
            ),
            20,
            "the calm device's fence at every upstream",
        )
        elapsed = time.monotonic() - started
        for recipient, spy in site.spies.items():
            calm = {
                orjson.loads(m.payload)["seq"] for m in spy.received if "press-2" in m.topic
            } - {fence}
            assert calm == set(range(int(10 * seconds))), f"{recipient} lost neighbour messages"
            flooded = {orjson.loads(m.payload)["seq"] for m in spy.received if "press-1" in m.topic}
            assert 20 <= len(flooded) <= 20 + 20 * elapsed + 5, (len(flooded), elapsed)
        check_upstream_fields(site)
        result = await site.audit([flooder, neighbour])
        row = record(
            "device flooding at 10x its rate",
            result.summary,
            faults=0,
            bad_inputs=int(200 * seconds),
            seconds=time.monotonic() - started,
        )
        assert result.returncode == 0, result.problems
        assert row.lost == 0
        assert result.summary["reasons"].get("flooding", 0) >= 200 * seconds * 0.6
        await flooder.close()
        await neighbour.close()
    finally:
        await site.teardown()
