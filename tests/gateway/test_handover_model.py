"""The handover's control operations: typed requests refuse what does not fit before a handler
runs, and their names are distinct from every other control operation's."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.log.transfer import ClosedTree
from gateway.operations import control_model, handover_model
from gateway.operations.handover_model import ClosedRecord, HoldRequest, ReleaseRequest


def test_the_ops_have_names_of_their_own() -> None:
    names = [op.name for op in handover_model.HANDOVER_OPS]
    assert len(set(names)) == len(names) == 6
    assert not set(names) & {op.name for op in control_model.OPS}


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"customer": "werk-a", "to_origin": "hall-b/werk-a", "new_key": "ab"}, "new_key"),
        ({"customer": "", "to_origin": "hall-b/werk-a", "new_key": "ab" * 32}, "customer"),
        (
            {"customer": "werk-a", "to_origin": "x", "new_key": "ab" * 32, "wait_s": 0},
            "wait_s",
        ),
        (
            {"customer": "werk-a", "to_origin": "x", "new_key": "ab" * 32, "typo": 1},
            "typo",
        ),
    ],
)
def test_a_release_that_does_not_fit_is_refused(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ReleaseRequest.model_validate(fields)


def test_a_hold_names_its_customer() -> None:
    with pytest.raises(ValidationError, match="filters"):
        HoldRequest.model_validate({"customer": "werk-a"})
    assert HoldRequest(customer="werk-a", filters=[]).filters == []


def test_a_scrub_names_the_new_instance_and_its_database() -> None:
    with pytest.raises(ValidationError, match="target_db"):
        ops_scrub = handover_model.ScrubRequest.model_validate
        ops_scrub({"customer": "werk-a", "to": "hall-b"})


def test_a_closed_record_carries_the_tree_both_ways() -> None:
    tree = ClosedTree(
        "werk-a",
        "hall-a/werk-a",
        "hall-b/werk-a",
        7,
        b"\x01" * 32,
        b"\x02" * 32,
        b"\x03" * 32,
        b"\x04" * 64,
    )
    record = ClosedRecord.of(tree)
    assert record.root == "01" * 32 and record.tree() == tree
