"""The status reply's typed model: what crosses the control socket, and what readers reject."""

from __future__ import annotations

import orjson
import pytest
from pydantic import ValidationError

from gateway.messages.retained import RetainedSweeper
from gateway.operations.metrics import render
from gateway.operations.status_model import Status
from gateway.operations.status_text import render_status

REPLY = {
    "instance": "box",
    "started_at": 0.0,
    "key_fingerprint": "ab:cd",
    "device_broker": {"connected": False, "since": 1.0, "error": "paused: outbox"},
    "upstreams": [],
    "pipeline": {"received": 7, "entries": 5, "shared": 3, "altered": 1, "withheld": 1},
    "disk": {"error": "statvfs failed: /var/lib/einblick"},
    "policies": [{"customer": "c", "version": None, "source": "c.yaml", "error": None}],
}


def test_json_round_trip_keeps_exactly_the_keys_the_parts_reported() -> None:
    status = Status.model_validate(REPLY)
    sent = status.to_json()
    # A disk never measured is sent as its error alone, not a row of nulls a client would read
    # as measured values.
    assert sent["disk"] == {"error": "statvfs failed: /var/lib/einblick"}
    assert Status.model_validate(sent) == status


def test_readers_read_typed_fields() -> None:
    status = Status.model_validate(REPLY)
    text = render_status(status)
    assert "pipeline: 7 received, 5 entries (3 shared, 1 altered, 1 withheld)" in text
    assert "device broker: DISCONNECTED (paused: outbox)" in text
    assert "einblick_messages_received_total 7" in render(status)
    assert "einblick_disk_free_bytes" not in render(status)


def test_a_reply_missing_a_required_field_is_refused_by_name() -> None:
    broken = {k: v for k, v in REPLY.items() if k != "device_broker"}
    with pytest.raises(ValidationError, match="device_broker"):
        render_status(broken)


def test_the_retained_sweepers_part_is_typed_and_sent_as_the_sweeper_reported_it() -> None:
    sweeper = RetainedSweeper(lambda: None, every_s=60, subscribed=lambda: True)  # type: ignore[arg-type,return-value]
    sweeper.stats.replays_skipped, sweeper.stats.last_sweep = 2, 1_700_000_000.5
    reported = sweeper.status()
    status = Status.model_validate({**REPLY, "retained": reported})
    assert status.retained.replays_skipped == 2
    # Same keys, same order, an int every_s still an int: the reply's bytes do not change.
    assert orjson.dumps(status.to_json()["retained"]) == orjson.dumps(reported)
    assert "retained" not in Status.model_validate(REPLY).to_json()  # unset stays absent
