"""Applying a reload: passwords read before anything changes, SIGHUP reloads in the background
and says the outcome in the log, and a SIGHUP before the start is ignored, said so."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from gateway.app import Gateway
from gateway.config import RecipientConfig
from gateway.errors import ConfigError
from gateway.operations.reload_apply import recipient_password
from tests.gateway.edge import edge_config
from tests.gateway.harness import Harness, running_gateway
from tests.gateway.test_end_to_end import BAKERY


def test_a_recipients_password_is_read_from_its_file_or_named_when_it_cannot_be(
    tmp_path: Path,
) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    plain = RecipientConfig(name="cloud", display_name="Cloud", url="mqtt://127.0.0.1:1")
    assert recipient_password(config, plain) is None
    secret = config.data_path / "cloud.secret"
    secret.write_text("  hunter2\n", encoding="utf-8")
    with_file = plain.model_copy(update={"password_file": secret})
    assert recipient_password(config, with_file) == "hunter2"
    gone = plain.model_copy(update={"password_file": config.data_path / "absent.secret"})
    with pytest.raises(ConfigError, match=r"cannot read the password of recipient 'cloud'"):
        recipient_password(config, gone)


def test_a_sighup_before_the_start_is_ignored_and_said(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = Gateway(edge_config(tmp_path, {"bakery.yaml": BAKERY}))
    with caplog.at_level(logging.WARNING):
        gateway.reload_on_signal()
    assert "SIGHUP before the gateway finished starting: ignored" in caplog.text


def _edit(h: Harness, old: str, new: str) -> None:
    path = h.gateway.config.source
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


async def test_a_sighup_reloads_in_the_background_and_logs_a_refusal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with running_gateway(tmp_path, {"bakery.yaml": BAKERY}, []) as h:
        _edit(h, "  checkpoint_interval_s:", "  device_max_rate: 7.5\n  checkpoint_interval_s:")
        h.gateway.reload_on_signal()
        async with asyncio.timeout(10):  # the status condition the reload changes
            while h.gateway.flood.rate != 7.5:
                await asyncio.sleep(0.01)
        assert h.gateway.config.pipeline.device_max_rate == 7.5
        _edit(h, "device_max_rate: 7.5", "device_max_rate: -3")
        with caplog.at_level(logging.ERROR):
            h.gateway.reload_on_signal()
            async with asyncio.timeout(10):
                while "reload on SIGHUP changed nothing" not in caplog.text:
                    await asyncio.sleep(0.01)
        assert h.gateway.flood.rate == 7.5
