"""Device text at the gateway's display edges: reports and `einblick status`."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import orjson

from gateway.operations.status_text import render_status
from gateway.rights.report import build_report, render
from tests.gateway.harness import running_gateway
from tests.gateway.test_report import DEVICES, POLICY

HOSTILE_KEYS = (
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "[click](http://evil.example)",
    "owner\u202egnp.exe",
)


async def test_keys_with_html_markdown_and_bidi_are_escaped_in_the_reports(
    tmp_path: Path,
) -> None:
    async with running_gateway(tmp_path, {"mueller.yaml": POLICY}, DEVICES) as h:
        meter = await h.device("mueller-soehne", "meter-1")
        payload = {"power": 1, "total": 2, **dict.fromkeys(HOSTILE_KEYS, 1)}
        await meter.publish("meters/meter-1", orjson.dumps(payload), 1)
        await h.wait_committed(1)
        await meter.close()
        config = h.gateway.config
        policy = h.gateway.engine.policy("mueller-soehne")
    data = build_report(
        config.database_path,
        "mueller-soehne",
        policy=policy,
        recipients=config.recipient_names(),
        now=datetime.now(UTC),
    )
    never = {n["device"]: n for n in data["never_shared"]}
    assert set(HOSTILE_KEYS) <= set(never["meter-1"]["fields"])  # the keys are in the data
    page = render(data, "html", "en")
    assert "<script" not in page and "<img" not in page  # no device-injected tags
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(2)&gt;" in page
    assert "\u202e" not in page and "owner\\u202egnp.exe" in page
    markdown = render(data, "md", "en")
    # Only escaped: no "<" or "](" without the backslash that makes it a literal character.
    assert not re.search(r"(?<!\\)<script|(?<!\\)\]\(http", markdown)
    assert "\\<script\\>" in markdown and "\\[click\\](http://evil.example)" in markdown
    assert "\u202e" not in markdown


def test_status_shows_a_hostile_client_id_as_escaped_text() -> None:
    """``einblick status`` lists refused logins by the client id the device sent."""
    status = {
        "instance": "box",
        "started_at": 0.0,
        "key_fingerprint": "ab",
        "device_broker": {"connected": True, "error": None},
        "pipeline": {"received": 0, "entries": 0, "shared": 0, "altered": 0, "withheld": 0},
        "last_checkpoint_age_s": None,
        "upstreams": [],
        "refusals": [
            {
                "kind": "bad_password",
                "who": "\x1b]0;pwned\x07evil\u202etxt.exe",
                "count": 3,
                "last": 0.0,
                "detail": "line\nforged",
            }
        ],
        "policies": [{"customer": "c", "version": "v", "source": "c.yaml", "error": None}],
    }
    text = render_status(status)
    assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
    assert "\\u001b]0;pwned\\u0007evil\\u202etxt.exe" in text
    assert "line\\u000aforged" in text
