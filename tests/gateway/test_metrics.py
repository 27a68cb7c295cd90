"""The Prometheus text: one series per fact in the status, labelled per recipient."""

from __future__ import annotations

import time

from gateway.operations.metrics import render
from gateway.operations.status_model import (
    DeviceBrokerStatus,
    PipelineStatus,
    Status,
    UpstreamStatus,
)


def _upstream(name: str, connected: bool, depth: int) -> UpstreamStatus:
    return UpstreamStatus(
        recipient=name,
        display_name=name,
        connected=connected,
        since=None,
        last_error=None,
        sent=0,
        withheld_at_send=0,
        in_flight=0,
        backlog=0,
        outbox_depth=depth,
    )


def test_each_fact_is_one_series() -> None:
    status = Status(
        instance="edge-7",
        started_at=time.time(),
        key_fingerprint="k",
        device_broker=DeviceBrokerStatus(connected=False),
        upstreams=[_upstream("oven-maker", True, 3), _upstream("logistics", False, 0)],
        pipeline=PipelineStatus(
            received=5,
            shared=2,
            altered=1,
            withheld=2,
            failing_closed="x",
            commits_on_loop=4,
            commits_on_helper=1,
            slow_commits=1,
            slow_commit_ms=2.0,
        ),
    )
    lines = render(status).splitlines()
    for expected in (
        "einblick_messages_received_total 5",
        'einblick_entries_total{outcome="shared"} 2',
        'einblick_entries_total{outcome="withheld"} 2',
        "einblick_failing_closed 1",
        'einblick_commits_total{place="loop"} 4',
        'einblick_commits_total{place="helper"} 1',
        "einblick_slow_commits_total 1",
        "einblick_outbox_full 0",
        "einblick_device_broker_connected 0",
        'einblick_upstream_connected{recipient="oven-maker"} 1',
        'einblick_upstream_connected{recipient="logistics"} 0',
        'einblick_outbox_rows{recipient="oven-maker"} 3',
    ):
        assert expected in lines, expected
    # Every series is declared before its samples.
    declared = {ln.split()[2] for ln in lines if ln.startswith("# TYPE")}
    samples = {ln.split("{")[0].split()[0] for ln in lines if ln and not ln.startswith("#")}
    assert samples <= declared, samples - declared


def test_a_customers_view_without_pipeline_counts_reads_as_zero() -> None:
    status = Status(
        instance="edge-7",
        started_at=time.time(),
        key_fingerprint="k",
        device_broker=DeviceBrokerStatus(connected=True),
        upstreams=[],
        pipeline=None,
    )
    assert "einblick_messages_received_total 0" in render(status.to_json()).splitlines()
