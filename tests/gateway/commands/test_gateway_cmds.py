"""The commands that run or ask the gateway (gateway/commands/gateway_cmds.py), as an installer
types them: ``init`` writes a working directory and says what to do next; ``status`` and
``reload`` without a running gateway say so and exit 1; ``receipt verify`` accepts a receipt the
box signed and names what is wrong with an altered one; and a running command stops in order on
SIGTERM, reloads on SIGHUP, on the paced event loop ``pipeline.wake_interval_ms`` sets."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path

import orjson
import pytest

from gateway.cli import main
from gateway.commands import gateway_cmds
from gateway.commands.gateway_cmds import run_until_signalled
from gateway.config import load_config
from gateway.devices.ports import free_port
from gateway.log.keys import Signer
from gateway.messages.pacing import PacedSelector
from gateway.rights.receipts import make_receipt


def _init(directory: Path) -> Path:
    code = main(["init", str(directory), "--port", str(free_port()), "--instance", "edge-test"])
    assert code == 0
    return directory / "einblick.yaml"


def test_init_writes_a_configuration_and_says_what_next(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = _init(tmp_path / "edge")
    err = capsys.readouterr().err
    config = load_config(config_path)
    assert config.instance == "edge-test"
    assert config.signing_key_path.is_file()
    assert f"wrote {config_path}" in err
    assert f"next: einblick device add --config {config_path}" in err
    assert f"einblick run --config {config_path}" in err


def test_status_and_reload_without_a_running_gateway_say_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = _init(tmp_path / "edge")
    capsys.readouterr()
    assert main(["status", "--config", str(config_path)]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("einblick: ") and "Traceback" not in err
    assert main(["reload", "--config", str(config_path)]) == 1
    err = capsys.readouterr().err
    assert f"the gateway is not running; it reads {config_path}" in err


def test_a_receipt_the_box_signed_verifies_and_an_altered_one_does_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config_path = _init(tmp_path / "edge")
    config = load_config(config_path)
    signer = Signer.load(config.signing_key_path)
    public = config.data_path / "keys" / "signing.pub"
    fields = {
        "type": "consent_withdrawn",
        "grant": "delivery-tracking",
        "customer": "spedition-weber",
        "at": "2026-03-02T08:00:00Z",
    }
    receipt = tmp_path / "receipt.json"
    receipt.write_bytes(orjson.dumps(make_receipt(signer, fields)))
    capsys.readouterr()
    assert main(["receipt", "verify", str(receipt), "--key", str(public)]) == 0
    assert capsys.readouterr().out == (
        "receipt OK: consent_withdrawn of grant 'delivery-tracking' for 'spedition-weber'"
        " at 2026-03-02T08:00:00Z\n"
    )
    altered = orjson.loads(receipt.read_bytes())
    altered["receipt"]["grant"] = "driver-events"
    receipt.write_bytes(orjson.dumps(altered))
    assert main(["receipt", "verify", str(receipt), "--key", str(public)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == "einblick: the signature does not match the receipt's content: it was altered\n"


def test_sighup_reloads_and_sigterm_stops_in_order() -> None:
    hangups: list[int] = []
    stopped: list[str] = []

    async def running() -> None:
        os.kill(os.getpid(), signal.SIGHUP)
        while not hangups:  # the handler runs on this loop: wait for it, then stop
            await asyncio.sleep(0.005)
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append("cancelled")  # components see the cancellation and stop in order
            raise

    run_until_signalled(running(), on_hangup=lambda: hangups.append(1))
    assert hangups == [1] and stopped == ["cancelled"]


def test_without_a_reload_sighup_stops_like_sigterm() -> None:
    stopped: list[str] = []

    async def running() -> None:
        os.kill(os.getpid(), signal.SIGHUP)
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            stopped.append("cancelled")
            raise

    run_until_signalled(running())
    assert stopped == ["cancelled"]


@pytest.mark.parametrize(("setting", "interval"), [(None, 0.002), ("7.5", 0.0075), ("0", None)])
def test_run_paces_its_event_loop_as_configured(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setting: str | None, interval: float | None
) -> None:
    config_path = _init(tmp_path / "edge")
    if setting is not None:
        text = config_path.read_text(encoding="utf-8")
        config_path.write_text(
            text.replace("pipeline:\n", f"pipeline:\n  wake_interval_ms: {setting}\n"), "utf-8"
        )
        assert load_config(config_path).pipeline.wake_interval_ms == float(setting)
    seen: list[float | None] = []

    def capture(
        main: Coroutine[object, object, object],
        on_hangup: Callable[[], object] | None = None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        main.close()  # the gateway is not run: only how its loop would be made
        if loop_factory is None:
            seen.append(None)
            return
        loop = loop_factory()
        selector = loop._selector  # type: ignore[attr-defined]
        assert isinstance(selector, PacedSelector)
        seen.append(selector.interval)
        loop.close()

    monkeypatch.setattr(gateway_cmds, "run_until_signalled", capture)
    assert main(["run", "--config", str(config_path)]) == 0
    assert seen == [interval]


def test_run_until_signalled_runs_on_the_loop_it_is_given() -> None:
    made: list[asyncio.AbstractEventLoop] = []

    def factory() -> asyncio.AbstractEventLoop:
        made.append(asyncio.SelectorEventLoop(PacedSelector(0.001)))
        return made[-1]

    async def running() -> asyncio.AbstractEventLoop:
        return asyncio.get_running_loop()

    ran: list[asyncio.AbstractEventLoop] = []

    async def record() -> None:
        ran.append(await running())

    run_until_signalled(record(), loop_factory=factory)
    assert ran == made and len(made) == 1
