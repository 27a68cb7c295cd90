"""The block `einblick run` prints at start: what runs, what does not, and where to look."""

from __future__ import annotations

from pathlib import Path

from gateway.operations.startup import PolicyLine, gather, render
from tests.gateway.edge import edge_config
from tests.gateway.test_end_to_end import BAKERY


def test_the_block_names_what_runs_and_what_does_not(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    facts = gather(
        config,
        [
            PolicyLine(
                file="p/bakery.yaml", customer="baeckerei-schmidt", version="a" * 40, error=None
            ),
            PolicyLine(
                file="p/broken.yaml", customer=None, version=None, error="p/broken.yaml:3: bad"
            ),
        ],
        devices=4,
        devices_not_admitted=1,
        key_fingerprint="ed25519:abcd",
    )
    text = render(facts)
    assert text.startswith(f"Einblick {facts.version} is running as instance {config.instance}")
    assert f"mqtt://127.0.0.1:{config.broker.port} (plain, device passwords)" in text
    assert "1 running, 1 NOT RUNNING (their customers' messages are withheld)" in text
    assert "    baeckerei-schmidt: p/bakery.yaml (version aaaaaaaaaaaa)" in text
    assert "    NOT RUNNING p/broken.yaml:3: bad" in text
    assert "4 device(s), 1 NOT admitted (einblick status says why)" in text
    assert "metrics        off (metrics.enabled: false)" in text
    assert "oven-maker -> " in text and "fingerprint ed25519:abcd" in text


def test_an_external_broker_and_tls_are_said_as_such(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {})
    tls = config.model_copy(
        update={
            "broker": config.broker.model_copy(
                update={"tls_port": 8883, "require_client_cert": True}
            )
        }
    )
    listeners = gather(tls, [], devices=0, devices_not_admitted=0, key_fingerprint="k")
    assert listeners.device_listeners[1] == "mqtts://127.0.0.1:8883 (TLS, client certificates)"
    external = config.model_copy(
        update={"broker": config.broker.model_copy(update={"mode": "external", "host": "10.0.0.5"})}
    )
    facts = gather(external, [], devices=0, devices_not_admitted=0, key_fingerprint="k")
    assert facts.broker == f"external broker 10.0.0.5:{config.broker.port} (you run it)"
    text = render(facts.model_copy(update={"recipients": []}))
    assert "0 running" in text and "none: nothing can leave" in text
