"""`einblick reload` against a running gateway and real Mosquitto: what can change live is applied
(recipients added, removed, moved; limits), only the forwarder whose recipient changed
reconnects, a removed recipient's queued rows are recorded withheld, and everything else is
named as needing a restart, with the reason. An invalid file changes nothing."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.errors import ConfigError
from gateway.log.reader import LogReader
from gateway.messages.endpoint import Endpoint, Inbound
from gateway.messages.mqtt import MqttConnection
from gateway.operations.reload import plan
from gateway.operations.scaffold import InitOptions, init_directory
from tests.gateway.harness import Harness, running_gateway
from tests.gateway.test_devices import BAKERY, CUSTOMER
from tests.gateway.test_registration_live import cli

DEVICES = [(CUSTOMER, "oven-1", "Backofen 1")]
TOPIC = "bakery/oven-1/telemetry"


def edit(h: Harness, old: str, new: str) -> None:
    path = h.directory / "einblick.yaml"
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def drop_recipient(h: Harness, name: str) -> None:
    path = h.directory / "einblick.yaml"
    text = path.read_text(encoding="utf-8")
    block = re.compile(rf"  - name: {name}\n(    .*\n)+")
    assert block.search(text), f"recipient {name} is not in {path}"
    path.write_text(block.sub("", text, count=1), encoding="utf-8")


def move_recipient(h: Harness, name: str, url: str) -> None:
    path = h.directory / "einblick.yaml"
    text = path.read_text(encoding="utf-8")
    moved, count = re.subn(rf"(  - name: {name}\n(?:    .*\n)*?    url: )\S+", rf"\g<1>{url}", text)
    assert count == 1, f"recipient {name} has no url in {path}"
    path.write_text(moved, encoding="utf-8")


async def withheld_reasons(h: Harness) -> list[str | None]:
    reader = await LogReader.open(h.gateway.config.database_path)
    try:
        found = []
        for row in reversed(await reader.page(limit=1000)):
            if row.kind == "decision" and row.outcome == "withheld":
                found.append((await reader.get(row.seq)).reason)
        return found
    finally:
        await reader.close()


async def test_reload_moves_one_recipient_applies_limits_and_names_what_needs_a_restart(
    tmp_path: Path,
) -> None:
    other = Mosquitto(
        MosquittoSettings(directory=tmp_path / "other", port=free_port(), anonymous=True)
    )
    other.write_files([])
    await other.start()
    arrived: list[Inbound] = []
    spy = MqttConnection(
        Endpoint("127.0.0.1", other.settings.port, "other-spy"), on_message=arrived.append
    )
    try:
        await spy.open()
        await spy.subscribe("#", 1)
        async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, DEVICES) as h:
            untouched = h.gateway.upstreams.tasks["logistics"]
            old_port = h.gateway.config.broker.port
            move_recipient(h, "oven-maker", f"mqtt://127.0.0.1:{other.settings.port}")
            drop_recipient(h, "energy-provider")
            edit(h, "  checkpoint_interval_s:", "  device_max_rate: 7.5\n  checkpoint_interval_s:")
            edit(h, f"  port: {old_port}", f"  port: {free_port()}")
            code, out, err = await cli(h, "reload")
            assert code == 0, err
            assert "applied  recipients.oven-maker.url" in out, out
            assert "applied  recipients.energy-provider" in out and "removed" in out, out
            assert "applied  pipeline.device_max_rate: 100.0 -> 7.5" in out, out
            assert re.search(r"RESTART\s+broker\.port: \d+ -> \d+: Mosquitto's listeners", out), out
            # Applied: the limit, the moved recipient, the removal; the rest runs as it was.
            assert h.gateway.flood.rate == 7.5
            assert "energy-provider" not in h.gateway.forwarders
            assert h.gateway.upstreams.tasks["logistics"] is untouched
            assert h.gateway.config.broker.port == old_port
            async with asyncio.timeout(10):
                while not h.gateway.forwarders["oven-maker"].state.connected:
                    await asyncio.sleep(0.02)
            oven = await h.device(CUSTOMER, "oven-1")
            await oven.publish(TOPIC, b'{"temperature": 180}', 1)
            await oven.close()
            async with asyncio.timeout(10):
                while not arrived:
                    await asyncio.sleep(0.02)
            assert arrived[0].topic == f"ovens/{CUSTOMER}/oven-1/telemetry"
            assert h.cloud.received == []  # the old broker got nothing after the move
    finally:
        await spy.close()
        await other.stop()


async def test_a_removed_recipients_queued_rows_are_recorded_withheld(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, DEVICES) as h:
        move_recipient(h, "oven-maker", f"mqtt://127.0.0.1:{free_port()}")  # nobody listens
        code, out, err = await cli(h, "reload")
        assert code == 0, err
        oven = await h.device(CUSTOMER, "oven-1")
        for value in (1, 2, 3):
            await oven.publish(TOPIC, b'{"temperature": %d}' % value, 1)
        await oven.close()
        await h.wait_committed(3)
        assert h.gateway.pipeline is not None
        assert h.gateway.pipeline.stats.outbox_depth["oven-maker"] == 3

        # Still granted by a running policy: the removal is refused, the recipient stays.
        drop_recipient(h, "oven-maker")
        code, out, err = await cli(h, "reload")
        assert code == 1, out
        assert "REFUSED  recipients.oven-maker" in out, out
        assert f"{CUSTOMER}/maintenance" in out, out
        assert "oven-maker" in h.gateway.forwarders

        # The customer's policy moves the grant to another recipient; now the removal applies.
        policy_file = h.directory / "policies" / "bakery.yaml"
        version = h.gateway.policies.files[policy_file].version
        policy_file.write_text(
            BAKERY.replace("recipient: oven-maker", "recipient: logistics"), encoding="utf-8"
        )
        async with asyncio.timeout(10):
            while h.gateway.policies.files[policy_file].version == version:
                await asyncio.sleep(0.05)
        code, out, err = await cli(h, "reload")
        assert code == 0, out + err
        assert "applied  recipients.oven-maker" in out and "removed" in out, out
        assert "oven-maker" not in h.gateway.forwarders
        assert h.gateway.pipeline.stats.outbox_depth.get("oven-maker", 0) == 0
        assert await withheld_reasons(h) == ["recipient_removed"] * 3
        assert h.cloud.received == []


async def test_an_invalid_file_changes_nothing_and_names_the_line(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, DEVICES) as h:
        running = h.gateway.config
        edit(h, "  checkpoint_interval_s:", "  device_max_rate: -3\n  checkpoint_interval_s:")
        code, _, err = await cli(h, "reload")
        assert code != 0
        line = next(
            n
            for n, text in enumerate(
                (h.directory / "einblick.yaml").read_text().splitlines(), start=1
            )
            if "device_max_rate" in text
        )
        assert f"einblick.yaml:{line}" in err, err
        # The gateway itself refuses it the same way (SIGHUP takes this path): nothing changed.
        with pytest.raises(ConfigError, match=rf"einblick\.yaml:{line}"):
            await h.gateway.reload_config()
        assert h.gateway.config is running
        assert h.gateway.flood.rate == running.pipeline.device_max_rate


async def test_a_changed_password_file_reconnects_only_that_recipient(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, DEVICES) as h:
        secret = h.directory / "oven-maker.password"
        secret.write_text("first\n", encoding="utf-8")
        edit(
            h,
            "    url: ",
            "    username: bakery-17\n    password_file: oven-maker.password\n    url: ",
        )
        code, out, err = await cli(h, "reload")
        assert code == 0, err
        assert "applied  recipients.oven-maker.password_file: none -> oven-maker.password" in out
        first = h.gateway.upstreams.tasks["oven-maker"]
        untouched = h.gateway.upstreams.tasks["logistics"]
        assert h.gateway.forwarders["oven-maker"].endpoint.password == "first"

        secret.write_text("second\n", encoding="utf-8")  # the file alone changes
        code, out, err = await cli(h, "reload")
        assert code == 0, err
        assert "applied  recipients.oven-maker.password" in out, out
        assert "second" not in out and "first" not in out  # a secret is never printed
        assert h.gateway.upstreams.tasks["oven-maker"] is not first
        assert h.gateway.upstreams.tasks["logistics"] is untouched
        assert h.gateway.forwarders["oven-maker"].endpoint.password == "second"

        code, out, err = await cli(h, "reload")  # nothing changed: nothing reconnects
        assert code == 0 and "nothing changed" in out, out
        assert h.gateway.forwarders["oven-maker"].endpoint.password == "second"


def test_a_changed_wake_interval_waits_for_a_restart_and_says_why(tmp_path: Path) -> None:
    config = load_config(init_directory(InitOptions(tmp_path / "edge")))
    changed = config.model_copy(
        update={"pipeline": config.pipeline.model_copy(update={"wake_interval_ms": 0.0})}
    )
    (change,) = plan(config, changed)
    assert (change.key, change.was, change.now, change.action) == (
        "pipeline.wake_interval_ms",
        "2.0",
        "0.0",
        "restart",
    )
    assert "the event loop" in change.detail and "made at start" in change.detail
