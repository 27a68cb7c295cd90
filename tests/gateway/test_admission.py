"""Which policy runs: one file per customer, a broken file stops only its customer, a changed
file replaces the running version, and the running policies' topics go to the broker's ACL."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from gateway.config import Config
from gateway.messages.admission import PolicyAdmission
from gateway.messages.policyset import PolicySet
from gateway.messages.pseudonyms import Keyring
from tests.faults.cluster_site import customer_policy
from tests.gateway.edge import edge_config
from tests.gateway.test_end_to_end import BAKERY, TRACKER

CUSTOMER = "baeckerei-schmidt"


def _admission(config: Config, restored: list[str]) -> PolicyAdmission:
    policies = PolicySet(config.policies_path, config.recipient_names(), list)
    return PolicyAdmission(policies, restored=restored.append)


def test_each_file_runs_beside_the_others(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY, "tracker.yaml": TRACKER})
    admission = _admission(config, [])
    assert not admission.started
    running = admission.start(Keyring())
    assert sorted(p.customer for p in running) == [CUSTOMER, "spedition-meier"]
    assert admission.running(CUSTOMER) and not admission.running("nobody")
    assert admission.declared_topics()[(CUSTOMER, "oven-1")] == ["bakery/oven-1/telemetry"]


def test_a_second_file_for_one_customer_is_refused_alone(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"a.yaml": BAKERY, "b.yaml": BAKERY, "t.yaml": TRACKER})
    admission = _admission(config, [])
    running = admission.start(Keyring())
    assert sorted(p.customer for p in running) == [CUSTOMER, "spedition-meier"]
    refused = admission.policies.files[config.policies_path / "b.yaml"]
    assert refused.error is not None
    assert "already has a policy" in refused.error and "one file per customer" in refused.error
    assert admission.engine.policy(CUSTOMER).source == str(config.policies_path / "a.yaml")  # type: ignore[union-attr]


def test_a_broken_file_keeps_its_customers_messages_attributed(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY.replace("grants:", "grantz:")})
    admission = _admission(config, [])
    assert list(admission.start(Keyring())) == []
    # Withheld as "policy not loaded", attributed to its customer (the shape read from the file).
    assert admission.not_loaded("bakery/oven-1/telemetry") == (CUSTOMER, "oven-1", "telemetry")
    assert admission.declared_topics()[(CUSTOMER, "oven-1")] == ["bakery/oven-1/telemetry"]


def test_a_changed_file_replaces_the_running_version_and_restores_consents(
    tmp_path: Path,
) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    restored: list[str] = []
    admission = _admission(config, restored)
    admission.start(Keyring())
    before = admission.engine.policy(CUSTOMER)
    assert before is not None
    path = config.policies_path / "bakery.yaml"
    path.write_text(BAKERY.replace("Remote maintenance", "Maintenance"), encoding="utf-8")
    assert admission.apply(path)
    after = admission.engine.policy(CUSTOMER)
    assert after is not None and after.version != before.version
    assert restored == [CUSTOMER]


def test_a_changed_file_that_does_not_load_leaves_the_running_version(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY})
    restored: list[str] = []
    admission = _admission(config, restored)
    admission.start(Keyring())
    version = admission.engine.policy(CUSTOMER).version  # type: ignore[union-attr]
    path = config.policies_path / "bakery.yaml"
    path.write_text(BAKERY.replace("legal_basis: contract", "legal_basis: whim"), encoding="utf-8")
    with caplog.at_level(logging.ERROR):
        assert not admission.apply(path)
    assert admission.engine.policy(CUSTOMER).version == version  # type: ignore[union-attr]
    assert admission.policies.files[path].error is not None
    assert restored == []


def test_recompile_applies_only_the_named_customers(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {"bakery.yaml": BAKERY, "tracker.yaml": TRACKER})
    restored: list[str] = []
    admission = _admission(config, restored)
    admission.recompile()  # before the start: nothing runs, nothing to do
    assert restored == []
    admission.start(Keyring())
    admission.recompile({"spedition-meier"})
    assert restored == ["spedition-meier"]
    admission.recompile()
    assert sorted(restored[1:]) == [CUSTOMER, "spedition-meier"]


def _instance(directory: Path, customer: str) -> PolicyAdmission:
    held = PolicySet(directory, {"oven-maker": "Ofenbau"}, list, owns=customer.__eq__)
    admission = PolicyAdmission(held, restored=lambda _c: None, cluster=True)
    admission.start(Keyring())
    return admission


def _decided_by(instances: dict[str, PolicyAdmission], topic: str) -> list[str]:
    """The customers whose policy decides ``topic`` on the instance that resolves it."""
    found = (a.engine.device_for(topic) for a in instances.values())
    return [device.customer for device in found if device is not None]


def test_in_a_cluster_one_customers_policy_decides_a_topic_two_instances_claim(
    tmp_path: Path,
) -> None:
    """werk-a's ``{site}/press-1/telemetry`` on hall-a, werk-b's literal topic on hall-b: each
    engine resolves werk-b's topic to werk-b alone; hall-a resolves it to no device (withheld,
    recorded as unknown), and still resolves werk-a's own sites. A lone gateway's engine asks
    nothing: the route table refuses such pairs there."""
    directory = tmp_path / "policies"
    directory.mkdir()
    press = customer_policy("werk-a").replace('"werk-a/press-1', '"{site}/press-1')
    (directory / "werk-a.yaml").write_text(press, encoding="utf-8")
    (directory / "werk-b.yaml").write_text(customer_policy("werk-b"), encoding="utf-8")
    halls = {"hall-a": _instance(directory, "werk-a"), "hall-b": _instance(directory, "werk-b")}
    assert _decided_by(halls, "werk-b/press-1/telemetry") == ["werk-b"]
    assert _decided_by(halls, "werk-a/press-1/telemetry") == ["werk-a"]
    assert _decided_by(halls, "plant-7/press-1/telemetry") == ["werk-a"]
    # A customer's file that does not run on its instance still claims its topics there: the
    # instance records them (withheld, "policy not loaded"), so hall-a gives them up too.
    broken = customer_policy("werk-b").replace("contract", "because")
    (directory / "werk-b.yaml").write_text(broken, encoding="utf-8")
    halls["hall-b"] = _instance(directory, "werk-b")
    halls["hall-a"] = _instance(directory, "werk-a")
    assert _decided_by(halls, "werk-b/press-1/telemetry") == []
    assert halls["hall-b"].not_loaded("werk-b/press-1/telemetry") == (
        "werk-b",
        "press-1",
        "telemetry",
    )
    lone = PolicyAdmission(PolicySet(directory, {}, list), restored=lambda _c: None)
    lone.start(Keyring())
    assert lone.engine.disowned is None


def test_what_another_instance_claims_reaches_a_running_engine_as_files_change(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The same running hall-a throughout: werk-b's file arriving later, an edit of it that
    breaks it and moves its topic (werk-b's instance runs the last good version on, so hall-a
    counts that one), its grant naming a recipient only werk-b's instance has, and a customer
    of hall-a's whose file does not run (its messages attributed to it, never werk-b's)."""
    directory = tmp_path / "policies"
    directory.mkdir()
    press = customer_policy("werk-a").replace('"werk-a/press-1', '"{site}/press-1')
    (directory / "werk-a.yaml").write_text(press, encoding="utf-8")
    hall_a = _instance(directory, "werk-a")
    assert hall_a.engine.device_for("werk-b/press-1/telemetry") is not None  # nothing known yet
    b_file = directory / "werk-b.yaml"
    own_recipient = customer_policy("werk-b").replace("recipient: oven-maker", "recipient: b-only")
    b_file.write_text(own_recipient, encoding="utf-8")
    assert not hall_a.apply(b_file)  # set aside: werk-b is another instance's
    assert hall_a.engine.device_for("werk-b/press-1/telemetry") is None
    moved = own_recipient.replace("press-1/telemetry", "press-2/telemetry")
    b_file.write_text(moved.replace("contract", "because"), encoding="utf-8")
    assert not hall_a.apply(b_file)
    assert hall_a.engine.device_for("werk-b/press-1/telemetry") is None  # the version running
    # A file of hall-c's that does not run claims "plant/+/telemetry"; werk-b's more literal
    # "plant/press-1/telemetry" takes that topic: not werk-c's message, not recorded as such.
    other = tmp_path / "other"
    other.mkdir()
    werk_c = customer_policy("werk-c").replace('"werk-c/press-1/telemetry"', '"plant/+/telemetry"')
    (other / "werk-c.yaml").write_text(werk_c.replace("contract", "because"), "utf-8")
    plant = own_recipient.replace('"werk-b/press-1', '"plant/press-1')
    (other / "werk-b.yaml").write_text(plant, "utf-8")
    hall_c = _instance(other, "werk-c")
    assert hall_c.not_loaded("plant/press-9/telemetry") == ("werk-c", "press-1", "telemetry")
    assert hall_c.not_loaded("plant/press-1/telemetry") is None
    assert any(  # the warning names the file that does not run, not "a file"
        r.getMessage().startswith("policy werk-c.yaml: topic pattern 'plant/+/telemetry'")
        for r in caplog.records
    )
