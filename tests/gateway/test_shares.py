"""A release asks its customer's share of its recipient's queue; past it, it is withheld and the
decision says what stayed and why."""

from __future__ import annotations

from pathlib import Path

from gateway.messages.pseudonyms import Keyring
from gateway.messages.quota import Admission, RecipientQueues
from gateway.messages.shares import QueueShares
from policies.decision import Alteration, Decision, Outcome
from policies.engine import Engine
from tests.policies.conftest import compile_text

POLICY = """
einblick_policy: 1
customer: {customer}
name: Werk
language: de
devices:
  - id: press-1
    name: Presse
    kind: press
    topics:
      - pattern: "{customer}/press-1"
        stream: telemetry
grants:
  - id: monitoring
    recipient: r1
    purpose: Monitoring
    legal_basis: contract
    devices: [press-1]
    topic: "presses/{{device}}"
    fields:
      seq: keep
"""


def _engine(*customers: str) -> Engine:
    return Engine([compile_text(POLICY.format(customer=c)) for c in customers], Keyring())


def _queues() -> RecipientQueues:
    return RecipientQueues(
        {"r1": "withhold"},
        max_rows_total=4,
        max_rows=None,
        max_bytes=None,
        disk_share=0.5,
        disk=Path("/"),
        measure=lambda path: 10**12,
    )


def _release(customer: str, seq: int) -> Decision:
    return Decision(
        customer=customer,
        device="press-1",
        recipient="r1",
        outcome=Outcome.ALTERED,
        grant="monitoring",
        topic="presses/press-1",
        payload=b'{"seq": %d}' % seq,
        shared=("seq",),
        altered=(Alteration("temp", "round", "0.5"),),
        withheld=("operator",),
    )


def test_past_its_share_a_release_is_withheld_with_every_path_listed() -> None:
    shares = QueueShares(_queues())
    engine = _engine("werk-nord", "werk-sued")  # two customers grant to r1: 2 rows each
    taken: list[Admission] = []
    kept = [shares.admit(engine, _release("werk-nord", i), taken) for i in range(3)]
    assert [d.outcome for d in kept] == [Outcome.ALTERED, Outcome.ALTERED, Outcome.WITHHELD]
    refused = kept[2]
    assert refused.reason is not None and refused.reason.code == "recipient_queue_full"
    assert (refused.payload, refused.topic, refused.shared, refused.altered) == (None, None, (), ())
    assert refused.withheld == ("seq", "temp", "operator")
    # The other customer's share is untouched.
    assert shares.admit(engine, _release("werk-sued", 0), taken).outcome is Outcome.ALTERED
    assert len(taken) == 4


def test_what_did_not_commit_is_given_back() -> None:
    shares = QueueShares(_queues())
    engine = _engine("werk-nord", "werk-sued")
    taken: list[Admission] = []
    for i in range(2):
        shares.admit(engine, _release("werk-nord", i), taken)
    assert shares.status(engine, "r1").customers["werk-nord"].rows == 2
    shares.undo(taken)
    assert shares.status(engine, "r1").customers["werk-nord"].rows == 0
    assert shares.admit(engine, _release("werk-nord", 9), []).outcome is Outcome.ALTERED


def test_the_shares_follow_the_running_policies() -> None:
    shares = QueueShares(_queues())
    alone = _engine("werk-nord")
    assert all(
        shares.admit(alone, _release("werk-nord", i), []).outcome is Outcome.ALTERED
        for i in range(4)
    )
    # A second customer now grants to r1 (a new engine): the share halves.
    both = _engine("werk-nord", "werk-sued")
    assert sorted(shares.status(both, "r1").customers) == ["werk-nord", "werk-sued"]
    assert shares.admit(both, _release("werk-nord", 5), []).outcome is Outcome.WITHHELD


def test_what_is_withheld_already_asks_nothing() -> None:
    shares = QueueShares(_queues())
    engine = _engine("werk-nord")
    taken: list[Admission] = []
    withheld = Decision(
        customer="werk-nord", device="press-1", recipient="r1", outcome=Outcome.WITHHELD
    )
    assert shares.admit(engine, withheld, taken) is withheld
    assert taken == []


def test_the_shares_follow_a_policy_reloaded_in_place() -> None:
    """A hot reload changes the running engine's policies in place: a customer no longer
    granting to r1 gives its share back, or the other's releases would be withheld for a full
    queue that is not full (a false reason in its log)."""
    shares = QueueShares(_queues())
    engine = _engine("werk-nord", "werk-sued")  # both grant to r1: 2 rows each
    assert all(
        shares.admit(engine, _release("werk-nord", i), []).outcome is Outcome.ALTERED
        for i in range(2)
    )
    elsewhere = POLICY.replace("recipient: r1", "recipient: r2").format(customer="werk-sued")
    engine.replace(compile_text(elsewhere))
    assert list(shares.status(engine, "r1").customers) == ["werk-nord"]
    assert shares.admit(engine, _release("werk-nord", 2), []).outcome is Outcome.ALTERED
    engine.remove("werk-sued")  # handed over: nothing changes for r1, and nothing is refused
    assert shares.admit(engine, _release("werk-nord", 3), []).outcome is Outcome.ALTERED
