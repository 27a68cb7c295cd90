"""What verifying the box's log database reports: one :class:`ChainReport` per log, gathered in
a :class:`VerifyReport` that ``einblick verify --db``, ``einblick status``, backups and the TUI
read. Both eras fill it: the tree checker (``gateway.log.verify``) and the 0.1.0 chain walk
(``gateway.log.legacy``). ``summary`` never says "OK" beside entries no checkpoint covers yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.errors import ChainBroken

__all__ = ["ChainReport", "VerifyReport"]


@dataclass(slots=True)
class ChainReport:
    customer: str
    start: int  # first index present (compaction anchor or 0)
    size: int = 0  # entries verified up to (exclusive)
    signed: int = 0  # entries covered by the last valid checkpoint
    checkpoints: int = 0
    problem: ChainBroken | None = None

    @property
    def unsigned(self) -> int:
        return max(self.size - self.signed, 0)


@dataclass(slots=True)
class VerifyReport:
    origin: str
    chains: list[ChainReport] = field(default_factory=list)
    trusted: list[str] = field(default_factory=list)  # fingerprints
    pinned: bool = False
    key_problems: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[ChainBroken]:
        return [c.problem for c in self.chains if c.problem is not None]

    @property
    def ok(self) -> bool:
        return not self.problems and not self.key_problems

    @property
    def first(self) -> ChainBroken | None:
        found = self.problems
        return found[0] if found else None

    @property
    def entries(self) -> int:
        return sum(c.size - c.start for c in self.chains)

    @property
    def unsigned(self) -> int:
        return sum(c.unsigned for c in self.chains)

    def summary(self) -> str:
        lines = [
            f"origin {self.origin}: {len(self.chains)} chain(s), {self.entries} entries, "
            # never "OK" beside entries no checkpoint covers yet: those are not proven
            + ("FAILED" if not self.ok else "INCOMPLETE" if self.unsigned else "OK")
        ]
        keys = ", ".join(self.trusted) or "none"
        lines.append(
            ("pinned key: " if self.pinned else "key NOT pinned (pass --key); trusting: ") + keys
        )
        lines += [f"key problem: {p}" for p in self.key_problems]
        for c in self.chains:
            state = "ok" if c.problem is None else f"FAILED: {c.problem}"
            tail = f", {c.unsigned} unsigned (after the last checkpoint)" if c.unsigned else ""
            start = f" from anchor {c.start}" if c.start else ""
            lines.append(
                f"  {c.customer}: {c.size - c.start} entries{start}, {c.checkpoints} "
                f"checkpoint(s){tail}: {state}"
            )
        return "\n".join(lines)
