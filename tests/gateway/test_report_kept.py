"""The report's "never passed on to anyone" agrees with what left: a kept object's fields left."""

from __future__ import annotations

import functools
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from gateway.log.documents import ShownBody
from gateway.log.reader import Reader
from gateway.log.results import ReportGroup
from gateway.messages import outbox
from gateway.messages.intake import Arrival
from gateway.rights.report import build_report, render
from policies.decision import Reason
from policies.explain import reason_text
from tests.gateway.fake_link import FakeLink
from tests.gateway.harness import running_gateway
from tests.gateway.test_sendtime import NOON, RECIPIENTS, TOPIC, open_bench
from tests.gateway.test_sendtime import POLICY as SENDTIME_POLICY
from tests.policies.conftest import compile_text

POLICY = """
einblick_policy: 1
customer: vans
name: Fahrdienst
language: en
devices:
  - id: van-1
    name: Van 1
    kind: van
    topics:
      - pattern: "vans/van-1"
        stream: telemetry
grants:
  - id: dispatch
    recipient: logistics
    purpose: {de: "Disposition", en: "Dispatch"}
    legal_basis: contract
    devices: [van-1]
    topic: "dispatch/{device}"
    fields:
      driver: keep
  - id: energy
    recipient: energy-provider
    purpose: {de: "Energie", en: "Energy"}
    legal_basis: contract
    devices: [van-1]
    topic: "energy/{device}"
    fields:
      battery: keep
"""


async def test_fields_of_a_kept_object_are_reported_as_passed_on(tmp_path: Path) -> None:
    async with running_gateway(tmp_path, {"vans.yaml": POLICY}, [("vans", "van-1", "Van 1")]) as h:
        van = await h.device("vans", "van-1")
        payload = {"driver": {"name": "Hans Maier", "badge": 17}, "battery": 80, "cabin": 21}
        await van.publish("vans/van-1", orjson.dumps(payload), 1)
        await h.cloud.wait_for(2)
        await h.wait_committed(1)
        await van.close()
        config = h.gateway.config
        policy = next(p for p in h.gateway.engine.policies() if p.customer == "vans")
    sent = {m.topic: orjson.loads(m.payload) for m in h.cloud.received}
    assert sent["dispatch/van-1"] == {"driver": {"name": "Hans Maier", "badge": 17}}
    data = build_report(
        config.database_path,
        "vans",
        policy=policy,
        recipients=config.recipient_names(),
        now=datetime.now(UTC),
    )
    (never,) = data["never_shared"]
    # The energy grant withholds driver.name and driver.badge, the dispatch grant kept them
    # inside "driver": they left, and only the cabin temperature never did.
    assert never["fields"] == ["cabin"]
    english = render(data, "md", "en")
    assert "never passed on to anyone: cabin" in english
    # A chain of one entry and one checkpoint reads in the singular (Babel's plural rules).
    one = {
        **data,
        "verification": {**data["verification"], "ok": True, "entries": 1, "checkpoints": 1},
    }
    german = render(one, "md", "de")
    assert "Der eine Eintrag Ihres Protokolls ist unverändert" in german
    assert "durch 1 signierten Prüfpunkt" in german and "1 Einträge" not in german
    assert "the one entry of your log is intact, covered by 1 signed checkpoint " in render(
        one, "md", "en"
    )
    logistics = next(r for r in data["recipients"] if r["id"] == "logistics")
    assert {f["field"] for f in logistics["fields"]} == {"driver.name", "driver.badge"}


def _body(
    outcome: str, shared: list[str], withheld: list[str], omitted: dict[str, int] | None = None
) -> ShownBody:
    body: ShownBody = {
        "kind": "decision",
        "customer": "vans",
        "device": "van-1",
        "recipient": "r",
        "outcome": outcome,
        "grant": "dispatch",
        "policy_version": "1",
        "purpose": {"de": "Disposition", "en": "Dispatch"},
        "legal_basis": "contract",
        "reason": None,
        "subject": "vans/van-1",
        "shared": shared,
        "altered": [],
        "withheld": withheld,
        "reason_params": {},
        "text_de": "",
        "text_en": "",
    }
    if omitted is not None:
        body["omitted"] = omitted
    return body


def test_entries_that_name_a_kept_object_by_its_own_path_cover_its_fields() -> None:
    from gateway.rights.report import _never_shared

    # Entries written before kept objects were listed leaf by leaf name the object itself.
    groups = [
        ReportGroup(_body("withheld", [], ["driver.name", "r[3].v", "cabin"]), 1, 0, 0),
        ReportGroup(_body("shared", ["driver", "r[0]"], []), 1, 0, 0),
    ]
    (never,) = _never_shared(None, groups)
    assert never["fields"] == ["cabin"]


def test_no_never_passed_on_list_when_a_release_list_was_cut() -> None:
    from gateway.rights.report import _never_shared

    groups = [
        ReportGroup(_body("withheld", [], ["cabin"]), 1, 0, 0),
        ReportGroup(_body("shared", ["a"], [], omitted={"shared": 7981}), 1, 0, 0),
    ]
    (never,) = _never_shared(None, groups)
    assert never["fields"] == [] and not never["nothing_left"]


async def test_a_message_released_twice_to_one_recipient_is_reported_as_both_releases_say(
    tmp_path: Path,
) -> None:
    # Two grants for one recipient give it two releases of one message (policies/combine.py):
    # a field one release leaves out and the other carries did leave; the report says so.
    from tests.gateway.test_sendtime import RECIPIENTS, open_bench
    from tests.gateway.test_sendtime_overlaps import NOON, POLICY, released

    async with open_bench(tmp_path, POLICY, NOON) as bench:
        rows = await released(bench, {"temperature": 182.7, "door_open": True, "serial": "X1"})
        assert sorted(rows) == ["daytime", "maintenance"]
        policy = bench.engine.policy("baeckerei-schmidt")
        data = build_report(
            bench.path, "baeckerei-schmidt", policy=policy, recipients=RECIPIENTS, now=NOON
        )
    (never,) = data["never_shared"]
    assert never["fields"] == ["serial"]
    (maker,) = [r for r in data["recipients"] if r["id"] == "oven-maker"]
    assert {(f["field"], f["treatment"], f["count"]) for f in maker["fields"]} == {
        ("door_open", "keep", 1),
        ("temperature", "round", 2),  # in both releases, rounded to 5 in each
    }


def test_withheld_messages_are_counted_by_reason_and_what_it_names() -> None:
    """Each line's text must be true of every message it counts: two grants' hours are two
    lines, as are two grants the clock's uncertainty withheld for; a size (one per message) is
    named by none."""
    from gateway.rights.report import _withheld

    def withheld(reason: str, params: dict[str, str]) -> ShownBody:
        body = _body("withheld", [], ["t"])
        body["reason"], body["reason_params"] = reason, params
        return body

    groups = [
        ReportGroup(withheld("outside_hours", {"hours": "06:00-22:00"}), 3, 0, 0),
        ReportGroup(withheld("outside_hours", {"hours": "08:00-18:00"}), 2, 0, 0),
        ReportGroup(withheld("clock_behind", {"what": "hours", "grant": "a"}), 4, 0, 0),
        ReportGroup(withheld("clock_behind", {"what": "consent", "grant": "b"}), 1, 0, 0),
        ReportGroup(withheld("too_large", {"size": "70000", "limit": "65536"}), 1, 0, 0),
        ReportGroup(withheld("too_large", {"size": "80000", "limit": "65536"}), 1, 0, 0),
    ]
    lines = _withheld(groups)
    assert lines == [
        {"reason": "clock_behind", "params": {"grant": "a", "what": "hours"}, "count": 4},
        {"reason": "outside_hours", "params": {"hours": "06:00-22:00"}, "count": 3},
        {"reason": "outside_hours", "params": {"hours": "08:00-18:00"}, "count": 2},
        {"reason": "too_large", "params": {"limit": "65536"}, "count": 2},
        {"reason": "clock_behind", "params": {"grant": "b", "what": "consent"}, "count": 1},
    ]
    text = reason_text("en", Reason(lines[0]["reason"], lines[0]["params"]))
    assert text.startswith("the gateway's system clock is behind the newest entry of its log")
    assert "whether the moment lies within the allowed hours of grant “a”" in text
    german = reason_text("de", Reason(lines[4]["reason"], lines[4]["params"]))
    assert "ob die Einwilligung zur Freigabe „b“ gilt" in german


async def test_what_left_under_an_older_purpose_is_reported_with_the_purpose_it_left_for(
    tmp_path: Path,
) -> None:
    """Shared for remote maintenance on a contract, then the grant reloaded as advertising on
    legitimate interests: the report put the new purpose beside the count of what left for the
    old one, and the old purpose appeared nowhere (GDPR Art. 15)."""
    async with open_bench(tmp_path, SENDTIME_POLICY, NOON) as bench:
        row = await bench.queued({"temperature": 180.2, "door_open": True})
        await bench.store.transaction(functools.partial(outbox.delete, ids=[row.id]))
    newer = compile_text(
        SENDTIME_POLICY.replace(
            '{de: "Fernwartung der Öfen", en: "Remote maintenance of the ovens"}',
            '{de: "Werbung", en: "Advertising"}',
        ).replace("legal_basis: contract", "legal_basis: legitimate_interests"),
        RECIPIENTS,
    )
    report = build_report(
        bench.path, "baeckerei-schmidt", policy=newer, recipients=RECIPIENTS, now=NOON
    )
    (maker,) = [r for r in report["recipients"] if r["id"] == "oven-maker"]
    assert maker["under"] == [
        {
            "grant": "maintenance",
            "purpose": {"de": "Fernwartung der Öfen", "en": "Remote maintenance of the ovens"},
            "legal_basis": "contract",
            "count": 1,
        }
    ]
    english = render(report, "md", "en")
    assert (
        "Of these, 1 as recorded when they were passed on: under permission “maintenance” for "
        "the purpose “Remote maintenance of the ovens”; legal basis: performance of a contract"
    ) in english
    german = render(report, "md", "de")
    assert "unter der Freigabe „maintenance“ zum Zweck „Fernwartung der Öfen“" in german
    # Under the policy it left under, nothing more is said: the grant's own line says it all.
    same = build_report(
        bench.path,
        "baeckerei-schmidt",
        policy=compile_text(SENDTIME_POLICY, RECIPIENTS),
        recipients=RECIPIENTS,
        now=NOON,
    )
    assert "Of these" not in render(same, "md", "en")


async def test_a_message_decided_again_at_send_time_is_counted_once_as_it_left(
    tmp_path: Path,
) -> None:
    """Queued while its recipient was away, then withheld at send time (after the grant's hours)
    or decided again under a changed policy: the report counted the first decision as passed on
    besides the second ("Received 1 message" for one that never left, "Received 2 messages" for
    one that left once, a field listed that never left). The send-time entry names the one it
    replaces (``supersedes``), and each message counts once, by its last decision."""
    async with open_bench(tmp_path, SENDTIME_POLICY, NOON) as bench:
        late = await bench.queued({"temperature": 180.2, "door_open": True})
        bench.now[0] = datetime(2026, 12, 3, 21, 3, tzinfo=UTC)  # after the grant's hours
        settled = await bench.check.settle([late])
        assert settled.withheld == [late]
        bench.now[0] = NOON
        changed = await bench.queued({"temperature": 181.2, "door_open": False})
        newer = compile_text(SENDTIME_POLICY.replace("      door_open: keep\n", ""), RECIPIENTS)
        bench.engine.replace(newer)
        (left,) = (await bench.check.settle([changed])).leave
        again = await bench.check.settle([left])  # the re-decided row leaves as it is now
        assert again.leave == [left] and again.withheld == []
    report = build_report(
        bench.path, "baeckerei-schmidt", policy=newer, recipients=RECIPIENTS, now=NOON
    )
    (maker,) = [r for r in report["recipients"] if r["id"] == "oven-maker"]
    assert (maker["messages"], maker["withheld"]) == (1, 1)
    fields = {f["field"]: f["count"] for f in maker["fields"]}
    assert fields.get("door_open") is None and fields["temperature"] == 1
    (oven,) = [d for d in report["devices"] if d["id"] == "oven-1"]
    assert oven["shared"] + oven["altered"] == 1 and oven["withheld"] == 1
    assert [u["count"] for u in maker["under"]] == [1]
    # The entries say it too, for anyone checking: each send-time decision names its original.
    with sqlite3.connect(bench.path) as conn:
        named = [
            orjson.loads(doc)["supersedes"]
            for (doc,) in conn.execute("SELECT doc FROM bodies ORDER BY id")
            if b"supersedes" in doc
        ]
    assert named == [0, 2]  # the tree indexes of the two messages' first decisions
    # The TUI's overview (per recipient and hour) counts the same way.
    with sqlite3.connect(bench.path) as conn:
        reader = Reader.over(conn, bench.path)
        counted = reader.recipient_counts(0, 3_600_000_000)
        # Counting takes in no bodies: the TUI takes new ones in as they come, and missed these.
        assert {b.id for b in reader.new_bodies()} >= {c.body_id for c in counted}
        outcomes = [reader.body(c.body_id).doc["outcome"] for c in counted for _ in range(c.count)]
    assert sorted(outcomes) == ["altered", "withheld"]


SUMMARISING = SENDTIME_POLICY.replace(
    """    hours: ["06:00-22:00"]
    fields:
      temperature: {round: 0.5}
      door_open: keep
""",
    """    aggregate:
      window: 2s
      min_count: 1
      fields:
        temperature: [max]
""",
)


async def test_a_decision_taken_again_replaces_none_where_the_first_may_have_left_and_names_fields(
    tmp_path: Path,
) -> None:
    """A row an earlier attempt may have delivered (its entry says "may have arrived there once"),
    withheld now, replaces nothing in the counts: replacing it said "never passed on" of what may
    have left. A summary that leaves unchanged under a new policy version is decided again with
    the fields it holds: its entry named none, so replacing the first said "never passed on" of
    the summary's fields, and not replacing it counted one summary as two messages."""
    assert SUMMARISING != SENDTIME_POLICY
    async with open_bench(tmp_path, SENDTIME_POLICY, NOON) as bench:
        row = await bench.queued({"temperature": 180.2, "door_open": True})
        bench.engine.withdraw("baeckerei-schmidt", "maintenance", NOON)
        tried = await bench.check.settle([row], None, lambda r: r.id == row.id)
        assert tried.withheld == [row]
        policy = bench.engine.policy("baeckerei-schmidt")
    report = build_report(
        bench.path, "baeckerei-schmidt", policy=policy, recipients=RECIPIENTS, now=NOON
    )
    (maker,) = [r for r in report["recipients"] if r["id"] == "oven-maker"]
    assert (maker["messages"], maker["withheld"]) == (1, 1)  # may have arrived: counted as sent
    assert {f["field"] for f in maker["fields"]} == {"temperature", "door_open"}

    later = NOON + timedelta(seconds=5)
    async with open_bench(tmp_path / "summary", SUMMARISING, NOON) as bench:
        link = FakeLink()
        reading = link.deliver(TOPIC, orjson.dumps({"temperature": 180.2}))
        await bench.pipeline.process([Arrival(reading)])
        bench.now[0] = later
        await bench.pipeline.record(bench.engine.flush(later, ()), later)
        (summary,) = await bench.waiting()
        renamed = SUMMARISING.replace("name: Bäckerei Schmidt", "name: Bäckerei Schmidt GmbH")
        newer = compile_text(renamed, RECIPIENTS)
        bench.engine.replace(newer)
        (left,) = (await bench.check.settle([summary])).leave
        assert left.payload == summary.payload
    report = build_report(
        bench.path, "baeckerei-schmidt", policy=newer, recipients=RECIPIENTS, now=later
    )
    (maker,) = [r for r in report["recipients"] if r["id"] == "oven-maker"]
    assert [f["field"] for f in maker["fields"]] == ["temperature"]
    assert maker["messages"] == 1
    assert not any(n["device"] == "oven-1" and n["nothing_left"] for n in report["never_shared"])
