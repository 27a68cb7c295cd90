"""A payload profile's suggested treatments, as a grant: the ``fields:`` and ``topic_levels:`` a
careful policy author would start from (``einblick policy suggest``), and the same as text with
each field's label, category and reason, ready to paste (withheld fields stay as comments).
Pure: the profiles are read at import, nothing else is."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from policies.profiles import Personal, Profile, Treatment, category_label, profile, suggestions
from policies.topics import BUILTIN_PLACEHOLDERS

__all__ = ["SuggestedGrant", "render_suggestion", "suggested_grant"]

_LAT = ("lat", "latitude")
_LON = ("lon", "lng", "longitude")
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


@dataclass(frozen=True, slots=True)
class SuggestedGrant:
    """What a grant that follows a profile's suggestions releases on one topic layout.

    ``fields`` and ``topic_levels`` are policy YAML data (``{"lat": {"coarsen": {...}}}``);
    ``companions`` names the longitude released with each coarsened latitude's rule;
    ``left_out`` says why a field (or topic level) is not released.
    """

    fields: dict[str, object]
    topic_levels: dict[str, str]
    companions: dict[str, str]
    left_out: dict[str, str]


def _split(path: str) -> tuple[str, str]:
    head, _, last = path.rpartition(".")
    return head, last


def _number(detail: str, default: float) -> float:
    try:
        return float(detail.split(maxsplit=1)[0])
    except (IndexError, ValueError):
        return default


def _yaml_number(value: float) -> int | float:
    return int(value) if value.is_integer() else value


def suggested_grant(profile_name: str, topic_pattern: str | None = None) -> SuggestedGrant:
    """The fields a grant releases when it follows ``profile_name``'s suggested treatments.

    With ``topic_pattern`` (one of the profile's patterns) only the fields that occur on it; a
    plain-text body there (``$payload``) is then the grant's only field, as the policy requires.
    Without it every JSON field of the profile. Withheld and aggregated fields are left out:
    default deny means a field that is not listed never leaves.
    """
    p = profile(profile_name)
    order = {s.path: s for s in suggestions(profile_name)}
    applicable = [
        f
        for f in p.fields
        if (topic_pattern is None and f.path != "$payload")
        or (topic_pattern is not None and (not f.topics or topic_pattern in f.topics))
    ]
    if topic_pattern is not None and any(f.path == "$payload" for f in applicable):
        applicable = [f for f in applicable if f.path == "$payload" or f.path.startswith("$topic.")]
    applicable.sort(key=lambda f: list(order).index(f.path))
    fields: dict[str, object] = {}
    levels: dict[str, str] = {}
    companions: dict[str, str] = {}
    left_out: dict[str, str] = {}
    coarsened = {f.path for f in applicable if f.treatment is Treatment.COARSEN}
    for f in applicable:
        how, detail = f.treatment, f.detail
        if f.path.startswith("$topic."):
            name = f.path.removeprefix("$topic.")
            if topic_pattern is not None and f"{{{name}}}" not in topic_pattern:
                continue
            if name in BUILTIN_PLACEHOLDERS:
                left_out[f.path] = (
                    f"{{{name}}} in a grant's topic is the policy's own {name}; give the capture "
                    f"another name (e.g. {{{name}_level}}) to use it"
                )
            elif how in (Treatment.KEEP, Treatment.PSEUDONYMISE):
                levels[name] = how.value
            else:
                left_out[f.path] = f"{how.value}: leave {{{name}}} out of the grant's topic"
            continue
        if how is Treatment.KEEP:
            fields[f.path] = "keep"
        elif how is Treatment.PSEUDONYMISE:
            fields[f.path] = "pseudonymise"
        elif how is Treatment.TRUNCATE:
            fields[f.path] = {"truncate": detail or "minute"}
        elif how is Treatment.ROUND:
            fields[f.path] = {"round": _yaml_number(_number(detail, 1.0))}
        elif how is Treatment.COARSEN:
            head, last = _split(f.path)
            partners = [
                other
                for other in coarsened
                if _split(other)[0] == head
                and _split(other)[1] in (_LON if last in _LAT else _LAT if last in _LON else ())
            ]
            if not partners:
                left_out[f.path] = "coarsen needs a latitude/longitude pair; withheld alone"
            elif last in _LAT:
                grid = _yaml_number(_number(detail, 1000.0))
                fields[f.path] = {"coarsen": {"grid_m": grid, "lon": _split(partners[0])[1]}}
            else:
                companions[f.path] = partners[0]
        elif how is Treatment.AGGREGATE:
            left_out[f.path] = (
                f"aggregate ({detail or 'over a window'}): a grant of its own with "
                f"aggregate: {{window: 15m, fields: {{{f.path}: [mean]}}}}"
            )
        else:
            left_out[f.path] = "withhold"
    return SuggestedGrant(fields, levels, companions, left_out)


def _key(path: str) -> str:
    return path if _SIMPLE_KEY.match(path) else json.dumps(path)


def _value(value: object) -> str:
    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_value(v)}" for k, v in value.items())
        return "{" + inner + "}"
    return str(value)


def _describe_field(p: Profile, path: str, lang: str) -> str:
    f = p.field(path)
    assert f is not None
    personal = {
        Personal.DIRECT: {"de": "direkt personenbezogen", "en": "direct personal data"},
        Personal.INDIRECT: {"de": "indirekt personenbezogen", "en": "indirect personal data"},
        Personal.NONE: {"de": "nicht personenbezogen", "en": "not personal"},
    }[f.personal][lang]
    rationale = next(s.rationale[lang] for s in suggestions(p.name) if s.path == path)
    return f"{f.labels[lang]} — {category_label(f.category, lang)}, {personal}. {rationale}"


def render_suggestion(profile_name: str, lang: str) -> str:
    """``policy suggest`` output: commented YAML to paste under a grant."""
    p = profile(profile_name)
    grant = suggested_grant(profile_name)
    lines = [
        f"# {p.title[lang]}: suggested treatments (einblick policy suggest --profile {p.name})",
        f"# topics: {', '.join(p.topics)}",
    ]
    if p.notes:
        lines.append(f"# {p.notes}")
    lines += [
        "# Paste under a grant. A field that is not listed never leaves (default deny);",
        "# withheld fields are shown commented out.",
    ]

    def entry(text: str, comment: str, width: int = 44) -> str:
        return f"{text:<{width}} # {comment}"

    level_fields = [f for f in p.fields if f.path.startswith("$topic.")]
    if level_fields:
        lines.append('# Topic levels: use them in the grant\'s topic, e.g. topic: "…/{name}"')
        lines.append("# topic_levels:")
        for f in level_fields:
            # Each line uncommented is valid YAML (name: keep | pseudonymise); a level that may
            # not leave as it is stays a comment of a comment, with the reason after the '#'.
            name = f.path.removeprefix("$topic.")
            how = grant.topic_levels.get(name)
            if how is not None:
                lines.append(entry(f"#   {name}: {how}", _describe_field(p, f.path, lang)))
            else:
                why = grant.left_out.get(f.path, "leave it out")
                lines.append(
                    entry(
                        f"#   # {name}: not in the topic",
                        f"{why}. {_describe_field(p, f.path, lang)}",
                    )
                )
    lines.append("fields:")
    described = [s.path for s in suggestions(profile_name) if s.path in _json_paths(p)]
    for path in described:
        comment = _describe_field(p, path, lang)
        if path in grant.fields:
            lines.append(entry(f"  {_key(path)}: {_value(grant.fields[path])}", comment))
        elif path in grant.companions:
            lines.append(
                entry(f"  # {_key(path)}: coarsened with {grant.companions[path]}", comment)
            )
        else:
            why = grant.left_out.get(path, "withhold")
            lines.append(entry(f"  # {_key(path)}: {why}", comment))
    whole = [f for f in p.fields if f.path == "$payload"]
    for f in whole:
        on = ", ".join(f.topics) or "every topic"
        how = f.treatment.value
        shown = how if how in ("keep", "pseudonymise") else f"withhold ({how} cannot apply)"
        lines += [
            f"# Plain-text bodies on {on}: a grant of its own, $payload must be its only field:",
            entry(f'#   "$payload": {shown}', _describe_field(p, "$payload", lang)),
        ]
    return "\n".join(lines) + "\n"


def _json_paths(p: Profile) -> set[str]:
    return {f.path for f in p.fields if not f.path.startswith("$")}
