"""``einblick policy check``'s warning about payload profiles: a grant that releases a direct
personal field of a covered device's profile unchanged (``keep``), or a device that names a
profile there is none of. Decided by the specificity rule of ``policies.paths``: a more specific
rule of the grant that treats the field silences the warning."""

from __future__ import annotations

from collections.abc import Sequence

from policies.compiler import CompiledPolicy
from policies.describe import grant_fields
from policies.lint import PolicyWarning
from policies.paths import specificity
from policies.profiles import PROFILES, Personal

__all__ = ["profile_warnings"]


def _segments(path: str) -> list[str]:
    return [segment.removesuffix("[]").removesuffix("[]") for segment in path.split(".")]


def _releases(grant_path: str, field_path: str) -> bool:
    """True when the grant's path releases the profile field or a part of it."""
    if grant_path == "$payload":
        return True
    if field_path.startswith("$"):
        return False
    granted, field = _segments(grant_path), _segments(field_path)
    return all(g == f or "*" in (g, f) for g, f in zip(granted, field, strict=False))


def _decides(fields: Sequence[str], path: str, field_path: str) -> bool:
    """True when ``path`` decides ``field_path`` (or a part of it) by the specificity rule of
    ``policies.paths``: no more specific path of the grant names the field itself."""
    if len(_segments(path)) > len(_segments(field_path)):
        return True  # the kept path lies inside the field: that part leaves unchanged
    rank = specificity(path)
    return not any(
        other != path
        and _releases(other, field_path)
        and len(_segments(other)) <= len(_segments(field_path))
        and specificity(other) > rank
        for other in fields
    )


def profile_warnings(policy: CompiledPolicy) -> list[PolicyWarning]:
    """A grant that keeps a direct personal field of a covered device's profile unchanged."""
    out: list[PolicyWarning] = []
    for index, device in enumerate(policy.devices):
        if device.profile is None:
            continue
        known = PROFILES.get(device.profile)
        if known is None:
            line = policy.document.locate(("devices", index, "profile"))[0]
            out.append(
                PolicyWarning(
                    policy.source,
                    line,
                    f"device {device.id!r} names payload profile {device.profile!r}; known "
                    f"profiles: {', '.join(sorted(PROFILES))}",
                )
            )
            continue
        direct = [f for f in known.fields if f.personal is Personal.DIRECT]
        for grant in policy.grants:
            if device.id not in grant.devices:
                continue
            fields = grant_fields(grant.spec)  # with the longitude of a coarsened pair
            kept = [path for path, how in grant.spec.fields.items() if how == "keep"]
            kept += [f"$topic.{n}" for n, how in grant.spec.topic_levels.items() if how == "keep"]
            for path in kept:
                for f in direct:
                    hit = (
                        path == f.path
                        if path.startswith("$topic.") or f.path.startswith("$topic.")
                        else _releases(path, f.path) and _decides(fields, path, f.path)
                    )
                    if not hit:
                        continue
                    suggested = f.treatment.value + (f" {f.detail}" if f.detail else "")
                    out.append(
                        PolicyWarning(
                            policy.source,
                            grant.line,
                            f"grant {grant.id!r} releases {f.path!r} ({f.labels['en']}, direct "
                            f"personal data in profile {known.name!r} of device {device.id!r}) "
                            f"unchanged with keep via {path!r}; suggested: {suggested}",
                        )
                    )
    return out
