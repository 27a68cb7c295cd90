"""What is legal in a policy but probably wrong: warnings with file:line for ``policy check``.

Grants that release nothing or cover no device; times truncated to the hour or day that leave
the moment they arrive; ``{topic}`` passing personal topic levels on. (Grants for one recipient
that overlap are not warned about: they combine order-free, see ``policies.combine``, and what
cannot be combined is refused when compiling, see ``policies.overlaps``.)
"""

from __future__ import annotations

from dataclasses import dataclass

from policies.compiler import CompiledGrant, CompiledPolicy
from policies.treatment_specs import TruncateSpec

__all__ = ["PolicyWarning", "lint"]


@dataclass(frozen=True, slots=True)
class PolicyWarning:
    path: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: warning: {self.message}"


def lint(policy: CompiledPolicy) -> list[PolicyWarning]:
    """Legal but probably wrong: grants that release nothing or cover nothing, truncations
    undone by delivery, ``{topic}`` with personal levels."""
    out: list[PolicyWarning] = []
    for grant in policy.grants:
        if not grant.releases_anything:
            out.append(
                PolicyWarning(
                    policy.source,
                    grant.line,
                    f"grant {grant.id!r} releases nothing (no fields, payload or aggregate)",
                )
            )
        if not grant.devices:
            out.append(
                PolicyWarning(policy.source, grant.line, f"grant {grant.id!r} covers no device")
            )
        out.extend(_timing_warnings(policy, grant))
        out.extend(_topic_warnings(policy, grant))
    return out


def _timing_warnings(policy: CompiledPolicy, grant: CompiledGrant) -> list[PolicyWarning]:
    """A time truncated to the hour or day still leaves within milliseconds of the message: the
    recipient reads the exact time from the arrival. Say so, and what helps."""
    out = []
    for path, treatment in grant.spec.fields.items():
        if isinstance(treatment, TruncateSpec) and treatment.truncate in ("hour", "day"):
            out.append(
                PolicyWarning(
                    policy.source,
                    policy.document.locate(("grants", policy.grants.index(grant), "fields", path))[
                        0
                    ],
                    f"grant {grant.id!r} truncates {path!r} to the {treatment.truncate}, but "
                    "messages leave the moment they arrive, so the recipient learns the exact "
                    "time from the delivery; to hide it, release summaries instead (aggregate "
                    f"with window: 1{treatment.truncate[0]}) or withhold the field",
                )
            )
    return out


def _topic_warnings(policy: CompiledPolicy, grant: CompiledGrant) -> list[PolicyWarning]:
    """``{topic}`` in an upstream topic passes the device's own topic on unchanged, with every
    level it captures (user names, device names), whatever ``topic_levels`` says."""
    if "topic" not in grant.template.names:
        return []
    levels: dict[str, None] = {}
    for device in policy.devices:
        if device.id not in grant.devices:
            continue
        for topic in device.topics:
            if grant.streams is None or topic.stream in grant.streams:
                levels.update(dict.fromkeys(topic.pattern.captures))
    if not levels:
        return []
    names = ", ".join(f"{{{name}}}" for name in levels)
    return [
        PolicyWarning(
            policy.source,
            policy.document.locate(("grants", policy.grants.index(grant), "topic"))[0],
            f"grant {grant.id!r} uses {{topic}}: the device's topic leaves unchanged, including "
            f"its levels {names}, which topic_levels cannot pseudonymise; name the levels in the "
            "template instead (for example {customer}/{device}/{stream}) and say in topic_levels "
            "how each may leave",
        )
    ]
