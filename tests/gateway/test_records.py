"""The records of processing (gateway/rights/records.py), built from the shipped example policies
and one written here: one activity per grant with what the configuration and the policy say,
categories from the devices' payload profiles, the consent a grant rests on, each customer's
retention, and a customer's name as text, never as markup."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.commands.rights import load_policies
from gateway.config import Config, load_config
from gateway.operations.scaffold import InitOptions, init_directory
from gateway.rights.records import FORMAT, build_records, render_records
from policies.compiler import compile_policy
from policies.loader import load_policy_text
from tests.gateway.test_report import POLICY as MUELLER

NOW = datetime(2026, 5, 1, tzinfo=UTC)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(init_directory(InitOptions(directory=tmp_path / "edge")))


def activities(config: Config, *extra: str) -> dict[str, Any]:
    policies = load_policies(config)
    policies += [compile_policy(load_policy_text(t), config.recipient_names()) for t in extra]
    return build_records(config, policies, now=NOW)


def test_one_activity_per_grant_with_what_configuration_and_policy_say(config: Config) -> None:
    data = activities(config)
    assert (data["format"], data["gateway"], data["generated_at"]) == (
        FORMAT,
        config.instance,
        "2026-05-01T00:00:00+00:00",
    )
    grants = [(a["customer"], a["grant"]) for a in data["activities"]]
    assert grants == [
        ("baeckerei-schmidt", "maintenance"),
        ("baeckerei-schmidt", "availability"),
        ("berg-partner", "energy-billing"),
        ("berg-partner", "demand-heating"),
        ("spedition-weber", "delivery-tracking"),
        ("spedition-weber", "driver-events"),
    ]
    maintenance = data["activities"][0]
    oven_maker = config.recipient("oven-maker")
    assert maintenance["transport"] == {"host": oven_maker.host, "tls": oven_maker.uses_tls}
    assert maintenance["recipient_name"] == oven_maker.display_name
    assert maintenance["legal_basis"] == "contract" and maintenance["consent"] is None
    # The safeguards are exactly the treatments that change a field on its way out.
    assert maintenance["fields"]["serial"] == "pseudonymise"
    assert maintenance["safeguards"] == ["pseudonymise", "round", "truncate"]
    # An opaque body leaves whole.
    assert data["activities"][1]["fields"] == {"$payload": "keep"}
    assert data["activities"][1]["safeguards"] == []
    assert data["retention"]["outbox_max_rows"] == config.outbox.max_rows


def test_categories_come_from_the_devices_payload_profiles(config: Config) -> None:
    by_grant = {a["grant"]: a for a in activities(config)["activities"]}
    tracking = {c["category"]: c for c in by_grant["delivery-tracking"]["categories"]}
    assert tracking["location"]["fields"] == ["lat", "vel", "lon"]
    assert tracking["location"]["personal"] == "direct"
    assert tracking["location"]["label"] == {"de": "Standort", "en": "location"}
    # Without a profile the field names are the categories.
    oven = by_grant["maintenance"]["categories"]
    assert all(c["category"] is None for c in oven)
    assert [c["fields"] for c in oven][:2] == [["ts"], ["temperature"]]


def test_a_consent_and_a_customer_s_own_retention_are_stated(config: Config) -> None:
    text = MUELLER.replace("grants:\n", "retention:\n  content_days: 30\ngrants:\n", 1)
    by_grant = {a["grant"]: a for a in activities(config, text)["activities"]}
    advice = by_grant["energy-advice"]
    assert advice["consent"]["given_by"] == "Jana Müller"
    assert advice["retention"] == {"content_days": 30, "entries_years": None}
    assert by_grant["maintenance"]["retention"] == {"content_days": None, "entries_years": None}
    english = render_records(activities(config, text), "md", "en")
    mueller = english.split("## Müller")[1].split("\n## ")[0]
    assert (
        "| Retention in the log | content (payloads, topics) 30 days, then deleted "
        "automatically; entries without a limit |"
    ) in mueller.splitlines()


def test_a_customer_s_name_is_text_in_every_format(config: Config) -> None:
    data = activities(config, MUELLER)
    markdown = render_records(data, "md", "de")
    html = render_records(data, "html", "de")
    assert "<b>" not in markdown and "<b>" not in html
    assert "## Müller \\<b\\>&\\</b\\> Söhne (mueller-soehne)" in markdown
    assert "Müller &lt;b&gt;&amp;&lt;/b&gt; Söhne" in html
    assert orjson.loads(render_records(data, "json", "de")) == orjson.loads(orjson.dumps(data))
    assert [
        a["customer_name"] for a in data["activities"] if a["customer"] == "mueller-soehne"
    ] == ["Müller <b>&</b> Söhne"]
