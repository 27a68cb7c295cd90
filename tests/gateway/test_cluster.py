"""Several instances behind one broker: each customer has exactly one owner, computed the same
everywhere; a configuration in which two instances claim a customer is refused at its line."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from gateway.cluster import ClusterConfig, rendezvous_owner
from gateway.config import load_config
from gateway.errors import ConfigError
from gateway.messages.broker_endpoints import gateway_endpoint, helper_endpoint
from gateway.messages.policyset import PolicySet
from gateway.messages.subscriptions import owned_filters
from gateway.operations.reload import plan
from tests.gateway.test_durability import POLICY as DURABILITY_POLICY

CUSTOMERS = [f"kunde-{n:03d}" for n in range(300)]

CLUSTER = """einblick_config: 1
instance: {instance}
data_dir: data-{instance}
broker:
  mode: external
  host: 127.0.0.1
  port: 1884
  client_id: einblick-hall
cluster:
  instances:
    - name: hall-a
      customers: [bakery]
    - name: hall-b
    - name: hall-c
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "einblick.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_rendezvous_owner_is_stable_spread_and_moves_little_when_an_instance_joins() -> None:
    two = ["hall-a", "hall-b"]
    three = ["hall-a", "hall-b", "hall-c"]
    before = {c: rendezvous_owner(c, two) for c in CUSTOMERS}
    # The order instances are listed in does not matter: every instance computes the same owner.
    assert before == {c: rendezvous_owner(c, list(reversed(two))) for c in CUSTOMERS}
    after = {c: rendezvous_owner(c, three) for c in CUSTOMERS}
    moved = [c for c in CUSTOMERS if before[c] != after[c]]
    # Only customers the new instance wins move, and nothing moves between the old two.
    assert all(after[c] == "hall-c" for c in moved)
    assert 60 <= len(moved) <= 140  # about a third of 300
    spread = Counter(after.values())
    assert set(spread) == set(three) and min(spread.values()) >= 70


def test_an_explicit_customer_overrides_the_hash() -> None:
    hashed = rendezvous_owner("bakery", ["hall-a", "hall-b", "hall-c"])
    other = next(n for n in ("hall-a", "hall-b", "hall-c") if n != hashed)
    cluster = ClusterConfig.model_validate(
        {
            "instances": [
                {"name": n, "customers": ["bakery"] if n == other else []}
                for n in ("hall-a", "hall-b", "hall-c")
            ]
        }
    )
    assert cluster.owner("bakery") == other
    assert cluster.owned_by(other, ["bakery"]) == ["bakery"]
    assert cluster.owned_by(hashed, ["bakery"]) == []


def test_every_instance_loads_the_same_assignment_and_owns_only_its_share(tmp_path: Path) -> None:
    owners: dict[str, list[str]] = {}
    fingerprints = set()
    for instance in ("hall-a", "hall-b", "hall-c"):
        config = load_config(write(tmp_path, CLUSTER.format(instance=instance)))
        owners[instance] = [c for c in [*CUSTOMERS, "bakery"] if config.owns(c)]
        assert config.cluster is not None
        fingerprints.add(config.cluster.fingerprint())
    assert "bakery" in owners["hall-a"]
    every = [c for share in owners.values() for c in share]
    assert sorted(every) == sorted([*CUSTOMERS, "bakery"])  # each exactly once
    assert len(fingerprints) == 1


@pytest.mark.parametrize(
    ("edit", "where", "words"),
    [
        (
            ("    - name: hall-b\n", "    - name: hall-b\n      customers: [bakery]\n"),
            ":10:3: cluster:",
            "customer 'bakery' is claimed by instance 'hall-a' and by 'hall-b'",
        ),
        (
            ("    - name: hall-c\n", "    - name: hall-b\n"),
            ":10:3: cluster:",
            "'hall-b' is listed twice",
        ),
        (("  mode: external\n", "  mode: managed\n"), "", "set broker.mode: external"),
        (("instance: hall-a", "instance: hall-x"), "", "not one of cluster.instances"),
    ],
)
def test_a_cluster_that_cannot_give_each_customer_one_writer_is_refused(
    tmp_path: Path, edit: tuple[str, str], where: str, words: str
) -> None:
    text = CLUSTER.format(instance="hall-a").replace(*edit)
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    assert where in str(caught.value) and words in str(caught.value), str(caught.value)


def test_each_instance_has_its_own_session_on_the_shared_broker(tmp_path: Path) -> None:
    ids = set()
    for instance in ("hall-a", "hall-b"):
        config = load_config(write(tmp_path, CLUSTER.format(instance=instance)))
        ids.add(gateway_endpoint(config.broker, "pw", config.instance).client_id)
        ids.add(helper_endpoint(config.broker, "pw", "retained", config.instance).client_id)
    assert ids == {
        "einblick-hall-hall-a",
        "einblick-hall-hall-a-retained",
        "einblick-hall-hall-b",
        "einblick-hall-hall-b-retained",
    }


def test_an_instance_subscribes_to_its_customers_topics_only() -> None:
    declared = {
        ("werk-a", "press-1"): ["werk-a/press-1/{stream}"],
        ("werk-b", "press-1"): ["werk-b/press-1/telemetry"],
    }
    assert owned_filters(["werk-a"], declared) == ["devices/werk-a/#", "werk-a/press-1/+"]
    assert "#" not in owned_filters(["werk-a", "werk-b"], declared)


def test_an_instance_loads_only_the_policies_of_its_customers(tmp_path: Path) -> None:
    for customer in ("werk-a", "werk-b"):
        text = DURABILITY_POLICY.replace("werk-nord", customer).replace("factory/", f"{customer}/")
        (tmp_path / f"{customer}.yaml").write_text(text, encoding="utf-8")
    policies = PolicySet(tmp_path, {"oven-maker": "Ofenbau"}, list, owns=lambda c: c == "werk-a")
    assert [p.customer for _, p in policies.load_each()] == ["werk-a"]
    assert [f.customer for f in policies.files.values()] == ["werk-a"]  # status shows no other
    assert policies.changed() == []  # the other's file is not read again every second
    other = tmp_path / "werk-b.yaml"
    other.write_text(other.read_text(encoding="utf-8") + "\n", encoding="utf-8")
    os.utime(other, ns=(1, 1))
    assert policies.changed() == [other]  # ... until it changes (its customer may have)


def test_a_changed_cluster_section_waits_for_a_restart(tmp_path: Path) -> None:
    old = load_config(write(tmp_path, CLUSTER.format(instance="hall-a")))
    new = load_config(
        write(tmp_path, CLUSTER.format(instance="hall-a").replace("[bakery]", "[bakery, mill]"))
    )
    changes = [c for c in plan(old, new) if c.key.startswith("cluster")]
    assert changes and all(c.action == "restart" for c in changes), changes
    assert "one writer" in changes[0].detail
