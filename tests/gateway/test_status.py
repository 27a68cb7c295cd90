"""The status is gathered from the part that owns each figure (gateway/operations/status.py):
what it says about the pipeline, the forwarders and the policies is what those parts hold."""

from __future__ import annotations

from pathlib import Path

from gateway.operations.status_text import render_status
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import BAKERY
from tests.gateway.test_report import POLICY as MUELLER

BROKEN = MUELLER.replace("legal_basis: consent", "legal_basis: because")
DEVICES = [
    ("baeckerei-schmidt", "oven-1", "Backofen 1"),
    ("mueller-soehne", "meter-1", "Zähler Keller"),
]


async def test_the_status_reports_each_part_as_it_is(tmp_path: Path) -> None:
    policies = {"bakery.yaml": BAKERY, "mueller.yaml": BROKEN}
    async with running_gateway(tmp_path, policies, DEVICES) as h:
        oven = await h.device("baeckerei-schmidt", "oven-1")
        await oven.publish("bakery/oven-1/telemetry", b'{"temperature": 181.3}', 1)
        await h.wait_committed(1)
        await h.cloud.wait_for(1)
        await oven.close()
        gateway = h.gateway
        status = gateway.status()
        assert gateway.pipeline is not None
        stats = gateway.pipeline.stats
        link = gateway.device_link.state
        latency = gateway.pipeline.decided.summary()
        place = gateway.store.place
        commits = (place.on_loop, place.on_helper, place.slow)  # as the status was taken

    assert status.instance == gateway.config.instance
    assert status.key_fingerprint == gateway.signer.fingerprint
    # The pipeline's own counters, not a copy kept elsewhere.
    assert (status.pipeline.received, status.pipeline.committed) == (1, 1)
    assert (status.pipeline.shared, status.pipeline.withheld) == (stats.shared, stats.withheld)
    # Rounded temperature: altered, not shared as it came.
    assert (status.pipeline.altered, status.pipeline.shared) == (1, 0)
    assert status.pipeline.outbox_full is False
    # Where the store's durable COMMITs ran, from the store's own count.
    on_loop, on_helper = status.pipeline.commits_on_loop, status.pipeline.commits_on_helper
    assert on_loop + on_helper >= 1
    assert (on_loop, on_helper, status.pipeline.slow_commits) == commits
    assert status.pipeline.slow_commit_ms == 2.0
    # The device link's own state and the pipeline's latency window, on the wire exactly as
    # `status --json` and the TUI read them (every key present, none added).
    reply = status.model_dump(mode="json", exclude_unset=True)
    assert reply["device_broker"] == {"connected": True, "since": link.since, "error": None}
    assert reply["pipeline"]["latency"] == {
        "count": 1,
        "window": 1,
        "p50_ms": latency.p50_ms,
        "p99_ms": latency.p50_ms,
        "max_ms": latency.p50_ms,
    }
    # One line per recipient, named as the configuration names it, with its forwarder's count.
    assert [u.recipient for u in status.upstreams] == list(gateway.forwarders)
    [upstream] = [u for u in status.upstreams if u.recipient == "oven-maker"]
    assert upstream.display_name == gateway.config.recipient_names()["oven-maker"]
    assert upstream.sent == gateway.forwarders["oven-maker"].state.sent >= 1
    # The running policy is named from the engine; the broken one has no name and its error.
    by_file = {Path(p.source).name: p for p in status.policies}
    assert by_file["bakery.yaml"].name == "Bäckerei Schmidt"
    assert by_file["bakery.yaml"].language == "de" and by_file["bakery.yaml"].error is None
    broken = by_file["mueller.yaml"]
    assert broken.name is None and broken.customer == "mueller-soehne"
    assert broken.error is not None and "legal_basis" in broken.error
    # And what `einblick status` prints is read from these fields.
    text = render_status(status)
    assert "mueller.yaml" in text and "legal_basis" in text
