"""Registration rules (topics confined to their owner, unknown customers, duplicates), session
takeovers in Mosquitto's log, the broker limits in the configuration, and a port in use."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import pytest

from gateway.cli import main as einblick
from gateway.config import load_config
from gateway.devices.broker import Mosquitto, wait_for_port
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.devices.refusals import RefusalBook
from gateway.devices.registry import Claim, Registry, RegistryError
from gateway.errors import BrokerError, ConfigError
from gateway.operations.scaffold import InitOptions, init_directory

OTHER = Claim("sued", "meter-1", "plant-b/meter-1/telemetry", "policy sued.yaml")


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("#", "outside customer 'werk-nord'"),
        ("+/werk-nord/spy/x", "outside customer 'werk-nord'"),
        ("devices/sued/spy/x", "outside customer 'werk-nord'"),
        ("devices/werk-nord/#", "reaches past the device's own prefix"),
        ("devices/werk-nord/{dev}/x", "reaches past the device's own prefix"),
        ("devices/werk-nord/press-2/x", "not under the device's own prefix"),
        ("devices/werk-nord/spy/#/x", "'#' may only be the last level"),
        ("$SYS/x", "expected an MQTT topic pattern"),
    ],
)
def test_a_registered_topic_outside_the_devices_own_prefix_is_refused(
    tmp_path: Path, pattern: str, why: str
) -> None:
    registry = Registry(tmp_path / "devices.json")
    with pytest.raises(RegistryError, match="spy") as caught:
        registry.add("werk-nord", "spy", name="Spion", kind="probe", topics=((pattern, "t"),))
    assert why in str(caught.value)
    assert registry.devices() == []


def test_own_prefix_is_accepted_and_overlaps_name_the_other_device(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "devices.json")
    registry.add(
        "werk-nord",
        "spy",
        name="Spion",
        kind="probe",
        topics=(("devices/werk-nord/spy/{stream}", "telemetry"),),
        commands=("devices/werk-nord/spy/cmd/set",),
    )
    declared = Claim("sued", "legacy", "devices/werk-nord/probe/+", "policy sued.yaml")
    with pytest.raises(RegistryError, match=r"device 'legacy' of customer 'sued'"):
        registry.add(
            "werk-nord",
            "probe",
            name="Probe",
            kind="probe",
            topics=(("devices/werk-nord/probe/x", "t"),),
            claims=[declared],
        )
    # A command topic may not be one the device (or any other) publishes under.
    with pytest.raises(RegistryError, match="overlaps"):
        registry.add(
            "werk-nord",
            "probe",
            name="Probe",
            kind="probe",
            topics=(("devices/werk-nord/probe/{stream}", "telemetry"),),
            commands=("devices/werk-nord/probe/cmd",),
        )
    with pytest.raises(RegistryError, match="gateway's own broker user"):
        Registry(tmp_path / "r.json", reserved=("werk-nord.gw",)).add(
            "werk-nord", "gw", name="G", kind="x"
        )


def test_a_violating_entry_is_named_and_the_others_are_admitted(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "devices.json")
    own = (("devices/werk-nord/press-1/{stream}", "telemetry"),)
    registry.add("werk-nord", "press-1", name="Presse 1", kind="press", topics=own)
    registry.add("sued", "meter-1", name="Zähler 1", kind="meter")
    good = registry.problems([OTHER])
    assert good == {}
    path = tmp_path / "devices.json"
    registry.save()
    path.write_text(
        path.read_text().replace('"devices/werk-nord/press-1/{stream}"', '"plant-b/#"'),
        encoding="utf-8",
    )
    problems = Registry(path).problems([OTHER])
    assert list(problems) == [("werk-nord", "press-1")]
    assert str(path) in problems[("werk-nord", "press-1")]
    assert (
        "einblick device remove --customer werk-nord --id press-1"
        in problems[("werk-nord", "press-1")]
    )


def _config(tmp_path: Path, port: int | None = None) -> Path:
    return init_directory(InitOptions(tmp_path / "edge", broker_port=port or free_port()))


def test_another_customers_first_level_wildcard_never_keeps_a_device_from_its_namespace(
    tmp_path: Path,
) -> None:
    """A policy pattern whose first level is a wildcard or capture (device families need them:
    Shelly's ``{id}/events/rpc``) matches topics in other customers' namespaces too, but never
    takes them (the engine gives them to the namespace's customer): a device registered there
    is admitted, before or after such a policy; its own customer's is refused as ever."""
    path = tmp_path / "devices.json"
    registry = Registry(path)
    own = (("devices/mueller-soehne/meter-2/{stream}", "telemetry"),)
    registry.add("mueller-soehne", "meter-2", name="Zähler 2", kind="meter", topics=own)
    registry.save()
    wild = Claim("evil-corp", "meter-1", "+/+/+/x", "policy b-evil.yaml")
    # The policy came after the registration: the device stays admitted.
    assert Registry(path).problems([wild]) == {}
    # The policy came first: a device registered in another customer's namespace is admitted.
    registry = Registry(path)
    probe = (("devices/sued/probe/{stream}", "t"),)
    registry.add("sued", "probe", name="Sonde", kind="probe", topics=probe, claims=[wild])
    # Its own customer's device under the same wildcard would compete for the topic: refused.
    with pytest.raises(RegistryError, match=r"overlaps '\+/\+/\+/x'"):
        registry.add(
            "evil-corp",
            "probe",
            name="Sonde",
            kind="probe",
            topics=(("devices/evil-corp/probe/{stream}", "t"),),
            claims=[wild],
        )


def test_device_add_refuses_an_unknown_customer_and_duplicates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(_config(tmp_path))
    customer = load_config(config).policies_path.glob("*.yaml").__next__()
    name = next(
        line.split(":", 1)[1].strip()
        for line in customer.read_text().splitlines()
        if line.startswith("customer:")
    )
    typo = name[:-1] + ("x" if name[-1] != "x" else "y")
    assert einblick(["device", "add", "--config", config, "--customer", typo, "--name", "A"]) == 2
    err = capsys.readouterr().err
    assert f"unknown customer {typo!r} (did you mean {name!r}" in err
    add = ["device", "add", "--config", config, "--customer", name]
    assert einblick([*add, "--name", "Sensor A"]) == 0
    capsys.readouterr()
    assert einblick([*add, "--name", "Sensor A", "--id", "other"]) == 2
    assert "already has a device named 'Sensor A'" in capsys.readouterr().err
    assert einblick([*add, "--name", "Sensor B", "--id", "sensor-a"]) == 2
    assert "already has a device with id 'sensor-a'" in capsys.readouterr().err
    registry = Registry(load_config(config).data_path / "devices.json")
    assert [d.device for d in registry.devices()] == ["sensor-a"]


def test_session_takeovers_and_dropping_queues_are_counted() -> None:
    book = RefusalBook()
    lines = [
        "t: New connection from 10.0.0.7:5000 on port 1883.",
        "t: Client werk-nord.press-1 already connected, closing old connection.",
        "t: New client connected from 10.0.0.7:5000 as werk-nord.press-1 (p2, c1, k60, u'werk-nord.press-1').",
        "t: Outgoing messages are being dropped for client einblick-gateway.",
    ]
    found = book.feed(lines, now=100.0)
    assert [(r.kind, r.who, r.detail) for r in found] == [
        ("session_replaced", "werk-nord.press-1", "by 10.0.0.7"),
        ("queue_full", "einblick-gateway", ""),
    ]
    assert book.totals["session_replaced"] == 1 and book.totals["queue_full"] == 1


def test_broker_limits_are_checked_and_the_gateway_user_cannot_be_a_device(tmp_path: Path) -> None:
    path = _config(tmp_path)
    text = path.read_text(encoding="utf-8")
    path.write_text(
        text.replace("broker:\n", "broker:\n  limits:\n    memory_limit_bytes: 1000000\n", 1),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="memory_limit_bytes"):
        load_config(path)
    path.write_text(
        text.replace("broker:\n", "broker:\n  gateway_username: werk-nord.press-1\n", 1),
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match="shape of a device username"):
        load_config(path)
    path.write_text(
        text.replace("broker:\n", "broker:\n  limits:\n    max_queued_bytes: 2097152\n", 1),
        encoding="utf-8",
    )
    conf = load_config(path)
    assert conf.broker.limits.max_queued_bytes == 2097152


async def test_a_port_in_use_is_a_clear_error_and_the_supervisor_gives_up(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        broker = Mosquitto(MosquittoSettings(directory=tmp_path / "b", port=port))
        broker.write_files([])
        # Named by its process (python, or pytest when run as .venv/bin/pytest) and its pid.
        held_by = rf"port {port} on 127.0.0.1 is in use by \S+ \(pid {os.getpid()}\)"
        with pytest.raises(BrokerError, match=held_by):
            await broker.start()
        async with asyncio.timeout(30):
            with pytest.raises(BrokerError, match="could not be started 3 times in a row"):
                await broker.supervise(max_failures=3)
        assert broker.process is None  # no Mosquitto was ever started against the held port


def _comm() -> str:
    """This process's name as /proc shows it: python3, or pytest when run as such."""
    return Path("/proc/self/comm").read_text().strip()


async def test_einblick_run_exits_non_zero_when_its_port_is_taken(tmp_path: Path) -> None:
    import sys

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        config = _config(tmp_path, holder.getsockname()[1])
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "run",
            "--config",
            str(config),
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert f"is in use by {_comm()} (pid {os.getpid()})".encode() in err  # this test's process
    assert b"Traceback" not in err


async def test_a_broker_killed_again_and_again_is_restarted_every_time(tmp_path: Path) -> None:
    # Quick exits of its own make the supervisor give up (above); kills from outside (an
    # operator, the OOM killer) never do, however soon after a start they come.
    broker = Mosquitto(MosquittoSettings(directory=tmp_path / "b", port=free_port()))
    broker.write_files([])
    await broker.start()
    async with asyncio.TaskGroup() as tasks:
        supervisor = tasks.create_task(broker.supervise(max_failures=3), name="supervisor")
        for _ in range(6):
            assert broker.process is not None
            old = broker.process.pid
            os.kill(old, signal.SIGKILL)
            async with asyncio.timeout(15):
                while broker.process is None or broker.process.pid == old:
                    await asyncio.sleep(0.05)
                await wait_for_port("127.0.0.1", broker.settings.port, 10)
        assert not supervisor.done()  # still supervising after five kills in a row
        supervisor.cancel()
    await broker.stop()
