"""Art. 30 records list every field a grant can send: a coarsened latitude's longitude too, and
the device's own topic when the upstream topic passes it on ({topic})."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.config import load_config
from gateway.operations.scaffold import InitOptions, init_directory
from gateway.rights.records import build_records
from policies.compiler import compile_policy
from policies.loader import load_policy_text
from tests.tui.test_grant_fields import POLICY


def test_records_name_the_longitude_and_the_raw_topic(tmp_path: Path) -> None:
    config = load_config(init_directory(InitOptions(directory=tmp_path / "edge")))
    text = POLICY.replace(
        "    fields:\n      pos.lat", '    topic: "fleet/{topic}"\n    fields:\n      pos.lat'
    )
    policy = compile_policy(load_policy_text(text), config.recipient_names())
    data = build_records(config, [policy], now=datetime(2026, 5, 1, tzinfo=UTC))
    dispatch = next(a for a in data["activities"] if a["grant"] == "dispatch")
    assert dispatch["fields"] == {
        "pos.lat": "coarsen",
        "speed": "keep",
        "pos.lng": "coarsen",
        "$topic": "keep",
    }
