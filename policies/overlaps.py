"""Grants for one recipient that meet on a message: refused where they cannot be combined order-free.

Two grants overlap when they give the same recipient the same device stream. Their releases
combine by ``policies.combine``: each leaf leaves in the most protective treatment any applying
grant gives it. That needs an order between the treatments, so a policy is refused — by
``policy check`` and by the gateway loading it, with the lines of both grants and what to
change — where two overlapping grants

- treat one field with alterations of different kinds (a pseudonym and a rounding, a coarsened
  position and a rounded latitude): neither is more protective;
- summarise one field differently (windows, functions or minimum counts differ);
- leave a topic level differently (one keeps ``{user}``, the other pseudonymises it), or one
  passes the whole device topic on (``{topic}``) while the other pseudonymises a level of it;
- release the body whole (``$payload``, ``payload: opaque``) beside a grant that alters or
  summarises fields: a body released whole cannot carry another grant's treatment of a field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from policies.errors import PolicyError
from policies.model import GrantSpec, PolicyDocument
from policies.treatment_specs import CoarsenSpec, RoundSpec, TruncateSpec

__all__ = ["Covered", "check_overlaps", "overlapping", "paths_meet"]


@dataclass(frozen=True, slots=True)
class Covered:
    """A grant as far as overlaps go: its document entry, index and device streams covered."""

    spec: GrantSpec
    index: int
    streams: frozenset[str]  # "device/stream"


def _tokens(path: str) -> list[str]:
    """``a.b[]`` -> ["a", "b", "[]"]; ``*`` stays ``*``."""
    out: list[str] = []
    for segment in path.split("."):
        name = segment.rstrip("[]")
        out.append(name)
        out.extend(["[]"] * ((len(segment) - len(name)) // 2))
    return out


def paths_meet(a: str, b: str) -> bool:
    """True when some leaf of some message is named by both field paths (or by a parent one
    names): level by level, keys equal or one is ``*``, arrays against arrays."""
    if "$payload" in (a, b):
        return True
    for x, y in zip(_tokens(a), _tokens(b), strict=False):
        if (x == "[]") != (y == "[]"):
            return False
        if x != y and "*" not in (x, y):
            return False
    return True


def _lines(spec: GrantSpec) -> list[tuple[str, str, str]]:
    """(path, kind, how it reads) of each field line; a coarsen line names both halves."""
    out: list[tuple[str, str, str]] = []
    for path, treatment in spec.fields.items():
        if isinstance(treatment, CoarsenSpec):
            head, _, _ = path.rpartition(".")
            partner = f"{head}.{treatment.coarsen.lon}" if head else treatment.coarsen.lon
            how = f"coarsen to {treatment.coarsen.grid_m:g} m"
            out += [(path, "coarsen", how), (partner, "coarsen", how)]
        elif isinstance(treatment, RoundSpec):
            out.append((path, "round", f"round to {treatment.round:g}"))
        elif isinstance(treatment, TruncateSpec):
            out.append((path, "truncate", f"truncate to the {treatment.truncate}"))
        else:
            out.append((path, str(treatment), str(treatment)))
    return out


def _whole(spec: GrantSpec) -> bool:
    return spec.payload == "opaque" or "$payload" in spec.fields


def _alters(spec: GrantSpec) -> bool:
    return spec.aggregate is not None or any(kind != "keep" for _, kind, _ in _lines(spec))


def _problem(a: GrantSpec, b: GrantSpec) -> str | None:
    """Why ``a`` and ``b`` cannot be combined for one recipient, or None."""
    for whole, other in ((a, b), (b, a)):
        if _whole(whole) and (_alters(whole) or _alters(other)):
            return (
                f"grant {whole.id!r} releases the body whole ($payload or payload: opaque), so "
                f"it cannot carry grant {other.id!r}'s treatment of single fields; name the "
                f"fields in {whole.id!r} instead, or give the two grants different devices or "
                "streams"
            )
    for kept, hidden in ((a, b), (b, a)):
        masked = [name for name, how in hidden.topic_levels.items() if how == "pseudonymise"]
        if masked and "{topic}" in kept.topic:
            return (
                f"grant {kept.id!r} passes the device's topic on unchanged ({{topic}}) while "
                f"grant {hidden.id!r} pseudonymises its level {{{masked[0]}}}; name the levels "
                f"in {kept.id!r}'s topic and pseudonymise {{{masked[0]}}} there too"
            )
    for name, level in a.topic_levels.items():
        other_level = b.topic_levels.get(name)
        if other_level is not None and other_level != level:
            return (
                f"grant {a.id!r} says {name}: {level} and grant {b.id!r} says {name}: {other_level} "
                f"for the topic level {{{name}}}; say pseudonymise in both"
            )
    if a.aggregate is not None and b.aggregate is not None:
        for path, functions in a.aggregate.fields.items():
            theirs = b.aggregate.fields.get(path)
            if theirs is None:
                continue
            if (sorted(functions), a.aggregate.window, a.aggregate.min_count) != (
                sorted(theirs),
                b.aggregate.window,
                b.aggregate.min_count,
            ):
                return (
                    f"grants {a.id!r} and {b.id!r} both summarise {path!r}, differently "
                    "(functions, window or min_count), and two summaries cannot be ordered by "
                    "how much they protect; summarise it in one grant only, or alike in both"
                )
    for path, kind, how in _lines(a):
        for other_path, other_kind, other_how in _lines(b):
            if "keep" in (kind, other_kind) or kind == other_kind:
                continue
            if paths_meet(path, other_path):
                return (
                    f"grant {a.id!r} says {path!r}: {how} and grant {b.id!r} says "
                    f"{other_path!r}: {other_how}; where both apply the field would need two "
                    "kinds of alteration, and neither protects more than the other; use the "
                    "same kind in both (the coarser of two of one kind applies), or keep the "
                    "field in one of them"
                )
    return None


def check_overlaps(doc: PolicyDocument, grants: Sequence[Covered]) -> None:
    """Raise PolicyError at the later grant's line for the first pair that cannot combine."""
    for position, later in enumerate(grants):
        for earlier in grants[:position]:
            if earlier.spec.recipient != later.spec.recipient:
                continue
            shared = sorted(earlier.streams & later.streams)
            if not shared:
                continue
            problem = _problem(earlier.spec, later.spec)
            if problem is None:
                continue
            line, column = doc.locate(("grants", later.index))
            earlier_line, _ = doc.locate(("grants", earlier.index))
            where = f"line {earlier_line}" if earlier_line is not None else doc.source
            raise PolicyError(
                doc.source,
                f"grant {later.spec.id!r} and grant {earlier.spec.id!r} ({where}) both give "
                f"recipient {later.spec.recipient!r} {', '.join(shared)}: {problem}",
                line=line,
                column=column,
                key=f"grants.{later.index}",
            )


def overlapping(grants: Sequence[Covered], index: int) -> tuple[str, ...]:
    """The ids of the grants that give grant ``index``'s recipient one of its device streams."""
    mine = grants[index]
    return tuple(
        sorted(
            other.spec.id
            for other in grants
            if other is not mine
            and other.spec.recipient == mine.spec.recipient
            and other.streams & mine.streams
        )
    )
