"""`einblick status` as text: each condition an installer must act on is said in words, and
device text in it is made visible, never interpreted."""

from __future__ import annotations

import time

from gateway.operations.status_model import (
    ClockStatus,
    DeviceBrokerStatus,
    DeviceProblem,
    PipelineStatus,
    PolicyStatus,
    RetainedStatus,
    Status,
    UpstreamStatus,
)
from gateway.operations.status_text import render_status


def _status(**changes: object) -> Status:
    base = Status(
        instance="edge-7",
        started_at=time.time() - 3600,
        key_fingerprint="ed25519:abcd",
        device_broker=DeviceBrokerStatus(connected=True),
        upstreams=[
            UpstreamStatus(
                recipient="oven-maker",
                display_name="Ofenbau",
                connected=True,
                since=None,
                last_error=None,
                sent=10,
                withheld_at_send=1,
                in_flight=0,
                backlog=0,
                outbox_depth=2,
            )
        ],
        pipeline=PipelineStatus(received=12, entries=13, shared=9, altered=2, withheld=2),
        policies=[PolicyStatus(customer="werk-nord", version="a" * 40, source="p/werk.yaml")],
    )
    return base.model_copy(update=changes)


def test_a_healthy_box_in_a_few_lines() -> None:
    text = render_status(_status())
    assert text.startswith("Einblick edge-7 — up ")
    assert "device broker: connected" in text
    assert "pipeline: 12 received, 13 entries (9 shared, 2 altered, 2 withheld)" in text
    assert "last signed checkpoint: none yet" in text
    assert "oven-maker         connected; outbox 2, sent 10, withheld at send 1" in text
    assert "  werk-nord              version aaaaaaaaaaaa  p/werk.yaml" in text
    assert "FAILING" not in text and "PAUSED" not in text


def test_what_needs_the_installer_is_said_in_capitals() -> None:
    text = render_status(
        _status(
            device_broker=DeviceBrokerStatus(connected=False, error="refused"),
            pipeline=PipelineStatus(failing_closed="disk full", outbox_full=True),
            clock=ClockStatus(steps_back=2, largest_step_s=30.0, behind_s=4.0),
            device_problems=[DeviceProblem(customer="c", device="d", error="overlaps")],
        )
    )
    assert "device broker: DISCONNECTED (refused)" in text
    assert "FAILING CLOSED — nothing is forwarded: disk full" in text
    assert "INTAKE PAUSED — the outbox is full" in text
    assert (
        "CLOCK WENT BACK 2× (largest step 30.0 s, now 4.0 s behind the log): entries keep the "
        "log's time; grants release only what every time it may be allows; check NTP" in text
    )
    assert "devices not admitted to the broker (their topics break the rules): 1" in text


def test_where_the_commits_waited_for_the_disk_is_said_once_there_were_any() -> None:
    assert "durable commits" not in render_status(_status())
    text = render_status(
        _status(
            pipeline=PipelineStatus(
                received=12,
                commits_on_loop=6500,
                commits_on_helper=79,
                slow_commits=2,
                slow_commit_ms=2.0,
            )
        )
    )
    assert (
        "  durable commits: 6,500 on the event loop, 79 on a helper thread; 2 took 2 ms or more"
        " or failed (a slow disk's go to the helper)"
    ) in text


def test_device_text_is_shown_escaped() -> None:
    text = render_status(
        _status(
            device_problems=[DeviceProblem(customer="c", device="d", error="bad\x1b[2Jtopic\nX")],
            policies=[PolicyStatus(customer="c", version=None, source="p", error="l1\nl2\u202e")],
        )
    )
    assert "bad\\u001b[2Jtopic\\u000aX" in text
    assert "ERROR: l1\nl2\\u202e" in text  # our own line break kept, the override shown


def test_retained_copies_recognised_as_decided_are_counted() -> None:
    assert "retained copies" not in render_status(_status())  # none: nothing to say
    text = render_status(_status(retained=RetainedStatus(replays_skipped=3, sweeps=2)))
    assert (
        "  retained copies sent again by the device broker: 3 recognised as decided already, "
        "not decided or forwarded a second time"
    ) in text


def test_while_behind_status_names_the_times_grants_are_also_judged_at() -> None:
    behind = ClockStatus(
        steps_back=1,
        largest_step_s=10800.0,
        behind_s=9000.0,
        also_at=["2026-03-02T14:00:00.123456+00:00", "2026-03-02T19:00:00+00:00"],
    )
    text = render_status(_status(clock=behind))
    assert (
        "  grants are also judged at: 2026-03-02T14:00+00:00 (the clock's reading); "
        "2026-03-02T19:00+00:00 (its last good reading carried on by the time since)" in text
    )
    restarted = behind.model_copy(update={"also_at": ["2026-03-02T14:00:00+00:00", None]})
    assert "some time after the log's, how long unknown" in render_status(_status(clock=restarted))
    caught_up = ClockStatus(steps_back=1, largest_step_s=10800.0)
    assert "also judged at" not in render_status(_status(clock=caught_up))
