"""A policy file that does not load stops only its own customer, at start as while running."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from gateway.devices.registry import RegisteredDevice, foreign_namespace, policy_claims
from gateway.log.reader import LogReader
from gateway.messages import policyset
from gateway.messages.admission import PolicyAdmission
from gateway.messages.policyset import PolicySet
from gateway.messages.pseudonyms import Keyring
from gateway.operations.control import request
from policies.decision import Outcome
from policies.message import Message
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import BAKERY
from tests.gateway.test_report import POLICY as MUELLER
from tests.policies.conftest import NOW, make_engine

BROKEN = MUELLER.replace("legal_basis: consent", "legal_basis: because")
DEVICES = [
    ("baeckerei-schmidt", "oven-1", "Backofen 1"),
    ("mueller-soehne", "meter-1", "Zähler Keller"),
]


def _started(
    directory: Path, shapes: Path | None = None, registered: tuple[RegisteredDevice, ...] = ()
) -> PolicyAdmission:
    """The policy files in ``directory`` admitted as at a gateway's start."""
    policies = PolicySet(
        directory,
        {"energy-provider": "Stadtwerke"},
        lambda: list(registered),
        shapes_path=shapes,
    )
    admission = PolicyAdmission(policies, restored=lambda _c: None)
    admission.start(Keyring())
    return admission


def _evil(meter_topic: str) -> str:
    """Müller's policy as another customer's, its meter at ``meter_topic``, its door its own."""
    return (
        MUELLER.replace("customer: mueller-soehne", "customer: evil-corp")
        .replace('"meters/meter-1"', f'"{meter_topic}"')
        .replace('"locks/door"', '"evil/door"')
    )


def _remembered_evil(tmp_path: Path, meter_topic: str) -> Path:
    """policy-shapes.json as a run that loaded ``_evil(meter_topic)`` as b-evil.yaml left it."""
    shapes = tmp_path / "policy-shapes.json"
    topics = [[meter_topic, "meter-1", "telemetry"], ["evil/door", "door", "events"]]
    entry = {"customer": "evil-corp", "topics": topics}
    shapes.write_bytes(orjson.dumps({"b-evil.yaml": entry}))
    return shapes


async def _withheld(db: Path, customer: str) -> list[tuple[str | None, str | None, dict[str, str]]]:
    """(device, reason, texts) of every withheld decision of ``customer``, oldest first."""
    reader = await LogReader.open(db)
    try:
        found = []
        for row in reversed(await reader.page(limit=1000)):
            if row.kind == "decision" and row.outcome == "withheld" and row.customer == customer:
                detail = await reader.get(row.seq)
                assert detail is not None
                found.append((row.device, detail.reason, {"de": row.text_de, "en": row.text_en}))
        return found
    finally:
        await reader.close()


async def test_a_bad_policy_at_start_withholds_only_its_customer_until_fixed(
    tmp_path: Path,
) -> None:
    policies = {"bakery.yaml": BAKERY, "mueller.yaml": BROKEN}
    async with running_gateway(tmp_path, policies, DEVICES) as h:
        # The box started; the broken customer is named with file and line.
        status = {
            p["source"].rpartition("/")[2]: p for p in h.gateway.status().to_json()["policies"]
        }
        error = status["mueller.yaml"]["error"]
        assert error is not None and "mueller.yaml:" in error and "legal_basis" in error
        assert status["mueller.yaml"]["customer"] == "mueller-soehne"
        assert status["bakery.yaml"]["error"] is None
        # The TUI's grant view asks "policies": the broken customer is there, with its error.
        answer = await request(h.gateway.config.control_socket, "policies")
        shown = {c["customer"]: c for c in answer["customers"]}
        assert shown["mueller-soehne"]["error"] == error and shown["mueller-soehne"]["grants"] == []

        oven = await h.device("baeckerei-schmidt", "oven-1")
        meter = await h.device("mueller-soehne", "meter-1")
        await meter.publish("meters/meter-1", orjson.dumps({"power": 1234, "total": 100}), 1)
        await oven.publish("bakery/oven-1/telemetry", b'{"temperature": 180.0}', 1)
        await h.cloud.wait_for(1)
        await h.wait_committed(2)
        assert [m.topic.partition("/")[0] for m in h.cloud.received] == ["ovens"]
        (withheld,) = await _withheld(h.gateway.config.database_path, "mueller-soehne")
        device, reason, texts = withheld
        assert (device, reason) == ("meter-1", "policy_not_loaded")
        assert "did not load" in texts["en"] and "ließ sich nicht laden" in texts["de"]

        # Fixed: hot reload brings the customer back, the next message goes out.
        policy_file = h.directory / "policies" / "mueller.yaml"
        policy_file.write_text(MUELLER, encoding="utf-8")
        async with asyncio.timeout(10):
            while h.gateway.engine.policy("mueller-soehne") is None:
                await asyncio.sleep(0.05)
        assert not h.gateway.policies.errors()
        await meter.publish("meters/meter-1", orjson.dumps({"power": 1234, "total": 101}), 1)
        await h.cloud.wait_for(2)
        assert h.cloud.received[1].topic.endswith("advice/meter-1")
        assert orjson.loads(h.cloud.received[1].payload) == {"power": 1230, "total": 101}
        await oven.close()
        await meter.close()


async def test_two_files_for_one_customer_refuse_the_second_and_start(tmp_path: Path) -> None:
    policies = {"a-bakery.yaml": BAKERY, "b-bakery-copy.yaml": BAKERY.replace("Bäckerei", "B")}
    async with running_gateway(tmp_path, policies, DEVICES[:1]) as h:
        status = {
            p["source"].rpartition("/")[2]: p for p in h.gateway.status().to_json()["policies"]
        }
        assert status["a-bakery.yaml"]["error"] is None
        error = status["b-bakery-copy.yaml"]["error"]
        assert error is not None and "already has a policy" in error and "a-bakery.yaml" in error
        oven = await h.device("baeckerei-schmidt", "oven-1")
        await oven.publish("bakery/oven-1/telemetry", b'{"temperature": 180.0}', 1)
        await h.cloud.wait_for(1)
        await oven.close()


def test_a_file_broken_beyond_reading_is_attributed_by_its_last_good_shape(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    path = directory / "mueller.yaml"
    path.write_text(MUELLER, encoding="utf-8")
    shapes = tmp_path / "policy-shapes.json"
    first = PolicySet(directory, {"energy-provider": "Stadtwerke"}, list, shapes_path=shapes)
    loaded = first.load(path)
    assert loaded is not None
    first.accepted(path, loaded.version)  # the engine ran it: only then is it remembered
    path.write_text("customer: [unclosed\n  :::", encoding="utf-8")  # not even YAML
    # The next start: the file does not load, but whose topics these are is remembered.
    second = PolicySet(directory, {"energy-provider": "Stadtwerke"}, list, shapes_path=shapes)
    assert second.load(path) is None
    assert second.files[path].customer == "mueller-soehne"
    owner = second.not_loaded("meters/meter-1", lambda customer: False)
    assert owner == ("mueller-soehne", "meter-1", "telemetry")
    assert second.not_loaded("meters/other", lambda customer: False) is None
    assert second.not_loaded("meters/meter-1", lambda customer: True) is None  # running: engine
    assert second.not_loaded_topics(lambda customer: False) == {
        ("mueller-soehne", "meter-1"): ["meters/meter-1"],
        ("mueller-soehne", "door"): ["locks/door"],
    }


# -- a file that never loaded claims only what is safely its own -------------------------------

# meter-1 claims every topic; the door claims the bakery's oven topic; a third device claims a
# topic in another customer's registry namespace. Only the wrong legal basis breaks the file.
GREEDY = (
    BROKEN.replace('"meters/meter-1"', '"#"')
    .replace('"locks/door"', '"bakery/oven-1/telemetry"')
    .replace(
        "devices:\n",
        "devices:\n  - id: gauge\n    name: Gauge\n    kind: meter\n    topics:\n"
        '      - pattern: "devices/baeckerei-schmidt/gauge/{stream}"\n'
        '      - pattern: "gauges/gauge-1"\n',
        1,
    )
)


def _greedy_set(tmp_path: Path) -> tuple[PolicySet, Path]:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "bakery.yaml").write_text(BAKERY, encoding="utf-8")
    path = directory / "mueller.yaml"
    path.write_text(GREEDY, encoding="utf-8")
    policies = PolicySet(directory, {"energy-provider": "Stadtwerke", "cloud": "C"}, list)
    policies.load_each()
    return policies, path


def test_a_never_loaded_file_claiming_every_topic_or_another_customers_gets_none_of_them(
    tmp_path: Path,
) -> None:
    policies, path = _greedy_set(tmp_path)
    assert policies.files[path].error is not None  # it really does not load
    assert policies.files[path].customer == "mueller-soehne"
    shape = policies.files[path].shape
    assert shape is not None and ("#", "meter-1", "telemetry") in shape.topics  # it was read
    # Only the topic that is safely its own reaches the broker's ACL.
    assert policies.not_loaded_topics(lambda customer: customer != "mueller-soehne") == {
        ("mueller-soehne", "gauge"): ["gauges/gauge-1"]
    }
    mine = lambda customer: customer != "mueller-soehne"  # noqa: E731
    assert policies.not_loaded("bakery/oven-1/telemetry", mine) is None
    assert policies.not_loaded("anything/else", mine) is None  # '#' attributes nothing
    assert policies.not_loaded("gauges/gauge-1", mine) == ("mueller-soehne", "gauge", "telemetry")


def test_a_never_loaded_file_may_not_claim_a_registered_device_of_another_customer(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    path = directory / "mueller.yaml"
    path.write_text(BROKEN.replace('"locks/door"', '"devices/werk/press/+"'), encoding="utf-8")
    press = RegisteredDevice(
        customer="werk",
        device="press",
        name="Presse",
        kind="press",
        username="werk.press",
        password_hash="x",
        topics=(("devices/werk/press/{stream}", "telemetry"),),
    )
    policies = PolicySet(directory, {"energy-provider": "Stadtwerke"}, lambda: [press])
    policies.load_each()
    assert policies.not_loaded_topics(lambda customer: False) == {
        ("mueller-soehne", "meter-1"): ["meters/meter-1"]
    }


def test_what_a_never_loaded_file_claims_is_worked_out_once_until_something_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked for every message of its customer (a device may send many), the answer that looks
    at every other customer's topics is kept, and worked out again after a registry change."""
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "mueller.yaml").write_text(BROKEN, encoding="utf-8")
    admission = _started(directory)
    looked: list[str] = []
    refusal = policyset.read_refusal

    def counted(customer: str, device: str, pattern: str, others: Any) -> str | None:
        looked.append(pattern)
        return refusal(customer, device, pattern, others)

    monkeypatch.setattr(policyset, "read_refusal", counted)
    admission.policies.registry_changed()  # forget what the start worked out
    door = ("mueller-soehne", "door", "events")
    for _ in range(100):
        assert admission.not_loaded("locks/door") == door
    assert sorted(looked) == ["locks/door", "meters/meter-1"]  # once each, not per message
    admission.recompile({"werk"})  # the registry changed (gateway/devices/access.py says so)
    assert admission.not_loaded("locks/door") == door
    assert len(looked) == 4


async def test_the_broker_gives_a_broken_files_device_no_write_access_beyond_its_own(
    tmp_path: Path,
) -> None:
    """In a running gateway: the ACL Mosquitto gets, and a publish through it."""
    policies = {"bakery.yaml": BAKERY, "mueller.yaml": GREEDY}
    async with running_gateway(tmp_path, policies, DEVICES) as h:
        rules = {rule.username: rule for rule in h.gateway.devices.acl_rules()}
        meter = rules[h.gateway.devices.registry.get("mueller-soehne", "meter-1").username]
        assert "#" not in meter.write, meter
        assert not any(f.startswith("bakery/") for f in meter.write), meter
        # meter-1 publishes onto the bakery's topic: the broker drops it. The oven's message
        # after it is the fence: once it is committed, the meter's would have been too.
        device = await h.device("mueller-soehne", "meter-1")
        oven = await h.device("baeckerei-schmidt", "oven-1")
        await device.publish("bakery/oven-1/telemetry", b'{"temperature": 999.0}', 1)
        await oven.publish("bakery/oven-1/telemetry", b'{"temperature": 180.0}', 1)
        await h.cloud.wait_for(1)
        await h.wait_committed(1)
        assert h.gateway.pipeline is not None and h.gateway.pipeline.stats.received == 1
        assert [orjson.loads(m.payload) for m in h.cloud.received] == [{"temperature": 180.0}]
        await device.close()
        await oven.close()


async def _until(condition: Callable[[], bool]) -> None:
    """Until the policy watcher (a one-second scan) has acted."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.05)


async def test_a_policy_file_removed_while_running_stops_its_customer_until_it_is_back(
    tmp_path: Path,
) -> None:
    """Before, the removed file's policy went on running, silently, until the next start (which
    would not find it): an installer removing a customer's file did not stop its sharing."""
    policies = {"bakery.yaml": BAKERY, "mueller.yaml": MUELLER}
    async with running_gateway(tmp_path, policies, DEVICES) as h:
        oven = await h.device("baeckerei-schmidt", "oven-1")
        meter = await h.device("mueller-soehne", "meter-1")
        await meter.publish("meters/meter-1", orjson.dumps({"power": 1234, "total": 100}), 1)
        await h.cloud.wait_for(1)
        policy_file = h.directory / "policies" / "mueller.yaml"
        policy_file.unlink()
        await _until(lambda: h.gateway.engine.policy("mueller-soehne") is None)
        status = {
            p["source"].rpartition("/")[2]: p for p in h.gateway.status().to_json()["policies"]
        }
        error = status["mueller.yaml"]["error"]
        assert error is not None and "the policy file was removed" in error
        assert "nothing of customer 'mueller-soehne' is shared" in error
        assert status["mueller.yaml"]["version"] is None
        # Its device may still publish: recorded, withheld; the other customer goes on.
        await meter.publish("meters/meter-1", orjson.dumps({"power": 1234, "total": 101}), 1)
        await oven.publish("bakery/oven-1/telemetry", b'{"temperature": 180.0}', 1)
        await h.cloud.wait_for(2)
        await h.wait_committed(3)
        assert [m.topic.partition("/")[0] for m in h.cloud.received][1:] == ["ovens"]
        (withheld,) = await _withheld(h.gateway.config.database_path, "mueller-soehne")
        device, reason, texts = withheld
        assert (device, reason) == ("meter-1", "policy_not_loaded")
        assert (
            "no policy of this customer is in force (its file did not load, or was removed)"
            in (texts["en"])
        )
        # Put back (under another name: a rename is a removal and a new file), it runs again.
        (h.directory / "policies" / "mueller-soehne.yaml").write_text(MUELLER, encoding="utf-8")
        await _until(lambda: h.gateway.engine.policy("mueller-soehne") is not None)
        running = h.gateway.engine.policy("mueller-soehne")
        assert running is not None and running.source.endswith("mueller-soehne.yaml")
        assert h.gateway.policies.errors() == []  # said until the customer runs again
        await meter.publish("meters/meter-1", orjson.dumps({"power": 1234, "total": 102}), 1)
        await h.cloud.wait_for(3)
        assert orjson.loads(h.cloud.received[2].payload) == {"power": 1230, "total": 102}
        await oven.close()
        await meter.close()


def test_a_file_renamed_is_one_removed_and_one_new_and_runs_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Removals are acted on before changes: the new name is not refused as a second file for
    a customer whose old file still ran, and not said to be one while it waits a scan."""
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "mueller.yaml").write_text(MUELLER, encoding="utf-8")
    admission = _started(directory)
    (directory / "mueller.yaml").rename(directory / "renamed.yaml")
    assert not admission.forget()  # missing at one scan: not yet taken for removed
    # Until then the new name waits, the old one runs; no error, and no advice to merge files.
    with caplog.at_level(logging.INFO):
        assert [admission.apply(path) for path in admission.policies.changed()] == [False]
    assert [r.levelno for r in caplog.records if "renamed.yaml" in r.getMessage()] == [logging.INFO]
    (waiting,) = admission.policies.errors()
    assert "waits a second" in waiting and "mueller.yaml is gone since the last scan" in waiting
    assert "merge" not in waiting
    running = admission.engine.policy("mueller-soehne")
    assert running is not None and running.source == str(directory / "mueller.yaml")
    assert admission.forget()  # removed: stopped, and the new name applied at once
    running = admission.engine.policy("mueller-soehne")
    assert running is not None and running.source == str(directory / "renamed.yaml")
    assert admission.policies.changed() == []
    assert admission.policies.errors() == []
    assert list(admission.policies.files) == [directory / "renamed.yaml"]


def test_a_file_missing_at_one_scan_only_is_not_taken_for_removed(tmp_path: Path) -> None:
    """Rewritten by deleting and writing it again (some deploy tools, an editor's save): the
    policy runs on; queued releases are not withheld for a moment's gap."""
    directory = tmp_path / "policies"
    directory.mkdir()
    path = directory / "mueller.yaml"
    path.write_text(MUELLER, encoding="utf-8")
    admission = _started(directory)
    path.unlink()
    assert not admission.forget()
    path.write_text(MUELLER, encoding="utf-8")
    assert not admission.forget()
    path.unlink()
    assert not admission.forget()  # missing again: counted from here
    assert admission.engine.policy("mueller-soehne") is not None
    assert admission.forget()
    assert admission.engine.policy("mueller-soehne") is None
    assert admission.policies.errors() == [
        f"{path}: the policy file was removed, so nothing of customer 'mueller-soehne' is "
        "shared (their devices' messages are recorded as withheld); put a policy file for them "
        f"into {directory} to share again"
    ]
    assert not admission.forget()  # said once


def test_a_second_file_refused_beside_a_removed_one_runs_then(tmp_path: Path) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "a.yaml").write_text(MUELLER, encoding="utf-8")
    (directory / "b.yaml").write_text(MUELLER.replace("Müller", "Mueller"), encoding="utf-8")
    admission = _started(directory)
    (error,) = admission.policies.errors()
    assert "already has a policy" in error
    (directory / "a.yaml").unlink()
    assert not admission.forget()
    assert admission.forget()
    running = admission.engine.policy("mueller-soehne")
    assert running is not None and running.source == str(directory / "b.yaml")
    assert admission.policies.errors() == []


def test_a_window_open_when_its_policy_stops_is_recorded_withheld_not_released() -> None:
    """Its summary is flushed after the policy stopped running: "passed on in altered form"
    would be false of a customer whose policy no longer is in force."""
    engine = make_engine({"aggregate": {"window": "5m", "fields": {"p": ["mean", "count"]}}})
    start = NOW.replace(minute=0)
    for index in range(3):
        engine.evaluate(
            Message("acme/dev/jjolie", b'{"p": 1}', start), start + timedelta(seconds=index)
        )
    policy = engine.policy("acme")
    assert policy is not None
    engine.replace(policy)  # as PolicyAdmission.forget: the windows close
    engine.remove("acme")
    (closed,) = engine.flush(start + timedelta(seconds=10))
    assert closed.outcome is Outcome.WITHHELD and closed.payload is None
    assert closed.reason is not None and closed.reason.code == "policy_not_loaded"
    assert "Decided by" not in engine.explain(closed, "en")  # by no policy in force


def test_a_file_gone_between_listing_and_loading_is_still_known_as_its_customers(
    tmp_path: Path,
) -> None:
    """A registry change compiles the customer again just as the file goes: its entry keeps
    whose it is, so the removal still stops the policy (before, it ran on, unnamed)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    path = directory / "mueller.yaml"
    path.write_text(MUELLER, encoding="utf-8")
    admission = _started(directory)
    path.unlink()
    assert not admission.apply(path)  # listed a moment ago, gone when read
    assert admission.policies.files[path].customer == "mueller-soehne"
    assert not admission.forget()
    assert admission.forget()
    assert admission.engine.policy("mueller-soehne") is None


def test_a_file_refused_for_another_customers_topics_claims_none_of_them(tmp_path: Path) -> None:
    """It compiled, so its shape was trusted whole although the engine refused it: its device
    could publish onto the other customer's topic, attributed to that customer's meter."""
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "a-mueller.yaml").write_text(MUELLER, encoding="utf-8")
    evil = _evil("meters/#")
    (directory / "b-evil.yaml").write_text(evil, encoding="utf-8")
    shapes = tmp_path / "policy-shapes.json"
    admission = _started(directory, shapes)
    policies = admission.policies
    (error,) = policies.errors()
    assert "b-evil.yaml" in error and "overlaps" in error
    assert admission.declared_topics() == {
        ("mueller-soehne", "meter-1"): ["meters/meter-1"],
        ("mueller-soehne", "door"): ["locks/door"],
        ("evil-corp", "door"): ["evil/door"],
    }
    assert admission.not_loaded("meters/meter-1") is None
    assert "b-evil.yaml" not in orjson.loads(shapes.read_bytes())  # not trusted at a restart


def test_a_file_missing_for_a_moment_is_not_replaced_by_a_refused_copy(tmp_path: Path) -> None:
    """A registry reload applies every file while the running one is being rewritten (deleted,
    then written): the refused copy beside it must not take over."""
    directory = tmp_path / "policies"
    directory.mkdir()
    current, old = directory / "a-current.yaml", directory / "z-old.yaml"
    current.write_text(MUELLER, encoding="utf-8")
    old.write_text(MUELLER + "\n# an old copy\n", encoding="utf-8")
    admission = _started(directory)
    aside = directory / "a-current.yaml.tmp"
    current.rename(aside)
    admission.recompile()
    aside.rename(current)
    for _ in range(2):  # two turns of the watcher
        admission.forget()
        for path in admission.policies.changed():
            admission.apply(path)
    running = admission.engine.policy("mueller-soehne")
    assert running is not None and running.source == str(current)
    (error,) = admission.policies.errors()
    assert error.startswith(str(old)) and "already has a policy" in error


def test_a_refused_edit_leaves_the_running_versions_topics_its_own(tmp_path: Path) -> None:
    """An edit the engine refuses: the version that still runs keeps its topics out of the
    reach of a file that never loaded (before, the refused edit's shape replaced them, and the
    other file could claim the running customer's topic); status names the running version."""
    directory = tmp_path / "policies"
    directory.mkdir()
    path = directory / "a-mueller.yaml"
    path.write_text(MUELLER, encoding="utf-8")
    (directory / "b-evil.yaml").write_text(
        _evil("evil/m"),
        encoding="utf-8",
    )
    (directory / "c-intruder.yaml").write_text(
        BROKEN.replace("customer: mueller-soehne", "customer: intruder").replace(
            '"locks/door"', '"intruder/door"'
        ),
        encoding="utf-8",
    )
    admission = _started(directory)
    running = admission.engine.policy("mueller-soehne")
    assert running is not None
    path.write_text(MUELLER.replace('"meters/meter-1"', '"evil/#"'), encoding="utf-8")
    assert not admission.apply(path)  # overlaps evil-corp's topics: refused
    assert admission.engine.policy("mueller-soehne") is running
    assert admission.policies.files[path].version == running.version
    assert admission.not_loaded("meters/meter-1") is None
    assert [k for k in admission.declared_topics() if k[0] == "intruder"] == [("intruder", "door")]


def test_a_policy_file_that_cannot_be_looked_at_is_not_taken_for_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The directory made unreadable (a wrong chmod at 2 am): the watcher goes on, and the
    policy runs on; only a file certainly gone stops its customer."""
    directory = tmp_path / "policies"
    directory.mkdir()
    path = directory / "mueller.yaml"
    path.write_text(MUELLER, encoding="utf-8")
    admission = _started(directory)
    stat = Path.stat

    def refused(self: Path, **kwargs: Any) -> Any:
        if self == path:
            raise PermissionError(13, "Permission denied", str(self))
        return stat(self, **kwargs)

    monkeypatch.setattr(Path, "stat", refused)
    for _ in range(3):
        assert not admission.forget()
    admission.recompile()
    assert admission.engine.policy("mueller-soehne") is not None


def test_a_policy_may_not_declare_topics_in_another_customers_registry_namespace(
    tmp_path: Path,
) -> None:
    """It would take the other customer's registered device's topic: that device refused as
    overlapping a policy, and its messages attributed to the file's customer."""
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "a-mueller.yaml").write_text(MUELLER, encoding="utf-8")
    taking = _evil("devices/mueller-soehne/meter-2/x")
    path = directory / "b-evil.yaml"
    path.write_text(taking, encoding="utf-8")
    admission = _started(directory)
    assert admission.engine.policy("evil-corp") is None
    (error,) = admission.policies.errors()
    assert error.startswith(f"{path}:11:")
    assert "lies in the registry's namespace devices/ outside customer 'evil-corp'" in error
    assert [k for k in admission.declared_topics() if k[0] == "evil-corp"] == [
        ("evil-corp", "door")
    ]
    # The registry does not count it against the other customer's device either.
    claims = policy_claims(directory)
    assert not any(c.pattern.startswith("devices/mueller-soehne/") for c in claims)
    own = taking.replace("devices/mueller-soehne/meter-2/x", "devices/evil-corp/meter-1/x")
    path.write_text(own, encoding="utf-8")
    assert admission.apply(path)  # its own namespace is its own


@pytest.mark.parametrize(
    ("pattern", "foreign"),
    [
        ("devices/mueller-soehne/meter-2/x", True),
        ("devices/+/x", True),
        ("devices/#", True),
        ("devices/{customer}/x", True),
        ("devices/evil-corp/meter-1/x", False),  # its own
        ("{id}/events/rpc", False),  # a device family's own layout: left to the overlap checks
        ("devices", False),  # one level: in no customer's namespace
        ("evil/+/x", False),
    ],
)
def test_what_reaches_into_another_customers_namespace(pattern: str, foreign: bool) -> None:
    assert (foreign_namespace("evil-corp", pattern) is not None) is foreign


def test_a_remembered_shape_from_before_the_rule_lets_no_foreign_topic_into_the_broker(
    tmp_path: Path,
) -> None:
    """policy-shapes.json written by a version without the namespace rule: the refused file's
    remembered shape still names another customer's topic, which must stay out."""
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "a-mueller.yaml").write_text(MUELLER, encoding="utf-8")
    shapes = _remembered_evil(tmp_path, "devices/mueller-soehne/meter-2/x")
    (directory / "b-evil.yaml").write_text(
        _evil("devices/mueller-soehne/meter-2/x"),
        encoding="utf-8",
    )
    admission = _started(directory, shapes)
    policies = admission.policies
    assert admission.engine.policy("evil-corp") is None
    shape = policies.files[directory / "b-evil.yaml"].shape
    assert shape is not None and shape.loaded  # remembered: trusted, as from a run before
    assert [k for k in admission.declared_topics() if k[0] == "evil-corp"] == [
        ("evil-corp", "door")
    ]
    assert admission.not_loaded("devices/mueller-soehne/meter-2/x") is None


@pytest.mark.parametrize("evil_first", [True, False])
def test_a_first_level_wildcard_never_takes_another_customers_registered_topic(
    tmp_path: Path, evil_first: bool
) -> None:
    """Müller's meter-2 is registered (``einblick device add``); evil-corp's policy says
    ``+/+/+/x``, which matches meter-2's topics. Before, whichever file loaded first ran and the
    other customer's whole policy was refused (evil first: it took meter-2's messages). Now both
    run, in either order: a topic in Müller's namespace is Müller's."""
    meter = RegisteredDevice(
        customer="mueller-soehne",
        device="meter-2",
        name="Zähler 2",
        kind="meter",
        username="mueller-soehne.meter-2",
        password_hash="x",
        topics=(("devices/mueller-soehne/meter-2/{stream}", "telemetry"),),
    )
    directory = tmp_path / "policies"
    directory.mkdir()
    names = ("b-mueller.yaml", "a-evil.yaml") if evil_first else ("a-mueller.yaml", "b-evil.yaml")
    (directory / names[0]).write_text(MUELLER, encoding="utf-8")
    (directory / names[1]).write_text(_evil("+/+/+/x"), encoding="utf-8")
    admission = _started(directory, registered=(meter,))
    assert admission.policies.errors() == []
    engine = admission.engine
    mine = engine.device_for("devices/mueller-soehne/meter-2/x")
    assert mine is not None and (mine.customer, mine.device) == ("mueller-soehne", "meter-2")
    # In Müller's namespace, of no device of Müller's: no one's, never evil-corp's.
    assert engine.device_for("devices/mueller-soehne/meter-9/x") is None
    theirs = engine.device_for("plant/a/b/x")
    assert theirs is not None and theirs.customer == "evil-corp"


def test_a_broken_files_namespace_topic_is_not_lost_to_another_customers_wildcard(
    tmp_path: Path,
) -> None:
    """Müller's file never loaded; what can be read of it still lets meter-1 publish in
    Müller's namespace (before, evil-corp's running ``+/+/+/x`` counted as overlapping it, and
    meter-1's messages were refused by the broker)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    namespaced = BROKEN.replace('"meters/meter-1"', '"devices/mueller-soehne/meter-1/x"')
    (directory / "a-mueller.yaml").write_text(namespaced, encoding="utf-8")
    (directory / "b-evil.yaml").write_text(_evil("+/+/+/x"), encoding="utf-8")
    admission = _started(directory)
    assert admission.engine.policy("evil-corp") is not None
    assert admission.declared_topics()[("mueller-soehne", "meter-1")] == [
        "devices/mueller-soehne/meter-1/x"
    ]
    hit = admission.not_loaded("devices/mueller-soehne/meter-1/x")
    assert hit is not None and hit[:2] == ("mueller-soehne", "meter-1")


def test_a_remembered_wildcard_never_says_a_topic_in_another_namespace_is_its_own(
    tmp_path: Path,
) -> None:
    """Its file broken, a remembered shape says whose a message is, but never of a topic in
    another customer's namespace."""
    directory = tmp_path / "policies"
    directory.mkdir()
    (directory / "a-mueller.yaml").write_text(MUELLER, encoding="utf-8")
    path = directory / "b-evil.yaml"
    path.write_text(_evil("+/+/+/x").replace("consent", "because"), encoding="utf-8")
    shapes = _remembered_evil(tmp_path, "+/+/+/x")
    admission = _started(directory, shapes)
    assert admission.engine.policy("evil-corp") is None
    assert admission.not_loaded("plant/a/b/x") == ("evil-corp", "meter-1", "telemetry")
    assert admission.not_loaded("devices/sued/probe/x") is None


def test_a_refused_edit_naming_another_customer_leaves_the_entry_the_running_ones(
    tmp_path: Path,
) -> None:
    directory = tmp_path / "policies"
    directory.mkdir()
    path = directory / "a.yaml"
    path.write_text(MUELLER, encoding="utf-8")
    (directory / "b.yaml").write_text(
        _evil("evil/m"),
        encoding="utf-8",
    )
    admission = _started(directory)
    running = admission.engine.policy("mueller-soehne")
    assert running is not None
    path.write_text(MUELLER.replace("customer: mueller-soehne", "customer: evil-corp"))
    assert not admission.apply(path)  # evil-corp has a policy already (b.yaml)
    entry = admission.policies.files[path]
    assert (entry.customer, entry.version) == ("mueller-soehne", running.version)
    path.unlink()
    assert not admission.forget()
    assert admission.forget()  # the running policy stops with its file
    assert admission.engine.policy("mueller-soehne") is None
