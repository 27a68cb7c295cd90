"""The overview (tui/overview.py): the rate sparkline, each recipient's counts and fields, and
the gateway's state as its typed status says it — not running, connected or not, failing
closed, the clock stepping back, a policy not loaded, an upstream's outbox and error, an
erasure request waiting — with device-chosen text made visible, never markup; the screen loads
it from the data source and keeps it fresh."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from gateway.bench.sample import NAMES, SampleLog
from gateway.operations.portal.store import ErasureRequest
from gateway.operations.status_model import (
    ClockStatus,
    DeviceBrokerStatus,
    PipelineStatus,
    PolicyStatus,
    Status,
    UpstreamStatus,
)
from tests.tui.conftest import make_app, plain, settle, until
from tui.model import Overview, RecipientStats
from tui.overview import OverviewScreen, render_overview, sparkline

HOSTILE = "[bold red]x[/] \x1b[2J\u202e"  # markup, an escape sequence, a bidi override


@pytest.mark.parametrize(
    ("values", "shown"),
    [
        ([], ""),
        ([0, 0, 0], "   "),
        ([1, 2, 3, 4, 5, 6, 7, 8], "▁▂▃▄▅▆▇█"),
        ([0, 5, 10], " ▄█"),
        ([1, 1000], "▁█"),  # a small value is still drawn, never a blank
    ],
)
def test_the_sparkline_scales_to_the_largest_value(values: list[int], shown: str) -> None:
    assert sparkline(values) == shown


def _status(**changes: object) -> Status:
    status = Status(
        instance="edge-01",
        started_at=0.0,
        key_fingerprint="ed25519:0000",
        device_broker=DeviceBrokerStatus(connected=True),
        upstreams=[
            UpstreamStatus(
                recipient="oven-maker",
                display_name="",
                connected=False,
                since=None,
                last_error=f"TLS handshake failed {HOSTILE}",
                sent=10,
                withheld_at_send=0,
                in_flight=0,
                backlog=3,
                outbox_depth=42,
            )
        ],
        pipeline=PipelineStatus(received=12, shared=5, altered=4, withheld=3),
    )
    return status.model_copy(update=changes)


def _overview(status: Status | None, **changes: object) -> Overview:
    stats = RecipientStats(
        recipient="oven-maker",
        last_hour=7,
        last_day=120,
        withheld_day=9,
        fields_sent=("temperature", "door_open"),
        never_sent=("badge",),
        buckets=(0, 2, 4),
    )
    return Overview(now_us=0, bucket_s=60, recipients=(stats,), status=status, **changes)  # type: ignore[arg-type]


def test_a_recipients_counts_and_fields() -> None:
    text = plain(render_overview(_overview(None), NAMES, "en"))
    assert "Ofenbau Müller GmbH – Wartungscloud" in text  # the recipient's name, not its id
    assert "120" in text and "9" in text
    assert "✓ Fields sent: temperature, door_open" in text
    assert "✗ never sent: badge" in text
    assert " ▄█" in text
    assert "gateway not running" in text


def test_the_running_gateways_state_as_its_status_says() -> None:
    status = _status(
        pipeline=PipelineStatus(received=12, shared=5, altered=4, withheld=3, failing_closed=True),
        clock=ClockStatus(steps_back=2, largest_step_s=3.5),
        policies=[
            PolicyStatus(customer="berg-partner", version=None, source="x.yaml", error=HOSTILE)
        ],
    )
    text = plain(render_overview(_overview(status), NAMES, "en"))
    assert "gateway not running" not in text
    assert "received 12 · shared 5 · altered 4 · withheld 3" in text
    assert "✗ database failing – nothing is forwarded" in text
    assert "system clock went back 2× (largest step 3.5 s)" in text
    assert "✗ policy not loaded – nothing of this customer leaves:" in text
    assert "Ofenbau Müller GmbH – Wartungscloud: ✗ disconnected  Outbox 42" in text
    assert "TLS handshake failed" in text
    # Device- and network-chosen text is shown as text: no markup applied, no escape sent.
    assert "[bold red]x[/]" in text
    assert "\x1b" not in text and "\u202e" not in text


def test_a_customers_view_has_no_pipeline_counts() -> None:
    text = plain(render_overview(_overview(_status(pipeline=None)), NAMES, "en"))
    assert "received" not in text and "✓ connected" in text


def test_an_erasure_request_waits_for_the_installer() -> None:
    request = ErasureRequest(
        id=1, customer="berg-partner", login="mberg", by="Miriam Berg", device=None, at=0.0
    )
    overview = _overview(None, erasure_requests=(request,))
    text = plain(render_overview(overview, NAMES, "en"), width=300)
    assert (
        "⚠ Erasure requested in the portal by customer berg-partner at 1970-01-01 00:00 UTC" in text
    )
    assert "run einblick forget --customer berg-partner" in text


async def test_the_screen_loads_from_the_source_and_refreshes(sample: SampleLog) -> None:
    app = make_app(sample.path, lang="en")
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        # Each refresh replaces the one before (an exclusive worker): wait on what it shows,
        # never on every worker finishing.
        screen = OverviewScreen(refresh_s=0.2)
        await app.push_screen(screen)
        await until(pilot, lambda: screen.overview is not None)
        first = screen.overview
        assert first is not None
        assert {s.recipient for s in first.recipients} == {
            "oven-maker",
            "logistics",
            "energy-provider",
        }
        assert "gateway not running" in plain(screen.body)
        sample.add(5, start=datetime(2026, 3, 2, 7, 29, tzinfo=UTC))
        await until(pilot, lambda: screen.overview is not first)  # the timer reloaded it
        await pilot.press("l")  # the language switches without going back to the database
        await until(pilot, lambda: "Gateway läuft nicht" in plain(screen.body))


def test_numbers_are_written_as_the_readers_language_writes_them() -> None:
    """German readers read "1,234" as about one: counts and the checkpoint's age go through
    Babel ("12.345", "vor 3,5 s"), as the rest of the TUI's numbers do."""
    overview = _overview(_status(last_checkpoint_age_s=3.5))
    stats = overview.recipients[0]
    overview = dataclasses.replace(
        overview, recipients=(dataclasses.replace(stats, last_day=12345, withheld_day=1200),)
    )
    german = plain(render_overview(overview, NAMES, "de"), width=300)
    assert "12.345" in german and "1.200" in german and "vor 3,5 s" in german
    english = plain(render_overview(overview, NAMES, "en"), width=300)
    assert "12,345" in english and "3.5 s ago" in english
