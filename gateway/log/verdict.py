"""What a proof check concludes: the verdict codes, the first problem, the witness policy.

The one proof checker (``gateway.log.proof``) and its parts (``gateway.log.absence``,
``gateway.log.names``, ``gateway.log.rotations``) record into a :class:`TreeVerdict`; the
bundle reader, the database verifier, single-entry proofs and ``einblick verify`` read it.
Codes (also ``einblick verify``'s exit codes): 0 verified, 1 tampered, 2 incomplete (something
is not covered by a verified checkpoint), 3 unusable input (raised as :class:`UnusableInput`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from gateway.errors import LogError
from gateway.log.merkle import EMPTY_ROOT
from gateway.log.note import Verifier

__all__ = [
    "INCOMPLETE",
    "NO_WITNESSES",
    "OK",
    "TAMPERED",
    "UNUSABLE",
    "Kept",
    "Problem",
    "TreeVerdict",
    "UnusableInput",
    "WitnessPolicy",
]

OK, TAMPERED, INCOMPLETE, UNUSABLE = 0, 1, 2, 3
NO_WITNESSES: WitnessPolicy


class UnusableInput(LogError):
    """The input cannot be checked at all (not a bundle, wrong format, unreadable key)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """The first thing wrong: at entry ``index`` (tree index), ``what``, expected vs found."""

    code: int
    index: int
    what: str
    expected: str
    found: str

    def __str__(self) -> str:
        return f"entry {self.index}: {self.what}: expected {self.expected}, found {self.found}"


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """A checkpoint counts only with ``required`` valid cosignatures from ``witnesses``.

    ``required`` 0 (the default) asks for none. Asking for more witnesses than are named is a
    policy nobody can meet, refused up front (an empty combination is an error, never a pass).
    """

    witnesses: tuple[Verifier, ...] = ()
    required: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.required <= len(self.witnesses):
            raise UnusableInput(
                f"witness policy: {self.required} cosignatures required but "
                f"{len(self.witnesses)} witness key(s) given"
            )


NO_WITNESSES = WitnessPolicy()


@dataclass(frozen=True, slots=True)
class Kept:
    """A checkpoint the customer kept (``--since``): its size and root, already verified."""

    size: int
    root: bytes
    leaves: Sequence[bytes] | None = None  # an earlier bundle's leaves: names the first change


@dataclass(slots=True)
class TreeVerdict:
    origin: str
    customer: str
    size: int = 0  # leaves in the tree (start + entries)
    start: int = 0
    covered: int = 0  # leaves covered by the largest verified checkpoint
    checkpoints: int = 0  # verified checkpoints
    keys: list[str] = field(default_factory=list)  # fingerprints of the key sequence
    root: bytes = EMPTY_ROOT
    problem: Problem | None = None
    notes: list[str] = field(default_factory=list)  # the verified checkpoints, largest last

    @property
    def code(self) -> int:
        return OK if self.problem is None else self.problem.code

    @property
    def ok(self) -> bool:
        return self.problem is None

    def fail(self, code: int, index: int, what: str, expected: str, found: str) -> None:
        if self.problem is None:
            self.problem = Problem(code, index, what, expected, found)
