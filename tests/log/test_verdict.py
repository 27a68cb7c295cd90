"""The verdict keeps the first problem; a witness policy nobody can meet is refused up front."""

from __future__ import annotations

import pytest

from gateway.log.note import ED25519_TYPE, Verifier
from gateway.log.verdict import (
    INCOMPLETE,
    OK,
    TAMPERED,
    UNUSABLE,
    Problem,
    TreeVerdict,
    UnusableInput,
    WitnessPolicy,
)


def test_the_codes_are_einblick_verifys_exit_codes() -> None:
    assert (OK, TAMPERED, INCOMPLETE, UNUSABLE) == (0, 1, 2, 3)


def test_the_first_problem_wins() -> None:
    verdict = TreeVerdict("box/c", "c")
    assert verdict.ok and verdict.code == OK
    verdict.fail(TAMPERED, 4, "entry missing", "index 4", "index 5")
    verdict.fail(INCOMPLETE, 0, "later", "x", "y")
    assert verdict.problem == Problem(TAMPERED, 4, "entry missing", "index 4", "index 5")
    assert verdict.code == TAMPERED and not verdict.ok
    assert str(verdict.problem) == "entry 4: entry missing: expected index 4, found index 5"


def test_a_witness_policy_asking_more_than_it_names_is_unusable() -> None:
    witness = Verifier("witness.example", ED25519_TYPE, b"\x01" * 32)
    assert WitnessPolicy((witness,), 1).required == 1
    with pytest.raises(UnusableInput, match="2 cosignatures required but 1 witness"):
        WitnessPolicy((witness,), 2)
    with pytest.raises(UnusableInput):
        WitnessPolicy((), -1)
