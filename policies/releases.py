"""What one applying grant releases of one message: the body as one value, or its fields, each
leaf in the most protective treatment of the recipient's applying grants (``policies.combine``),
and the topic it goes to (``release_topic``: the grant's template, topic levels taken from the
device's topic as they are or pseudonymised).

The engine decides which grants apply (``policies.engine``); here each one's release is built.
A release that comes out empty or cannot be written is ``Held`` with its reason, and the engine
withholds it. Several releases to one recipient are then made to agree on what was "kept here"
(``besides``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import orjson

from policies.body import TEXT, Parsed
from policies.combine import release_with
from policies.compiler import CompiledGrant
from policies.decision import Alteration, Decision, Reason
from policies.numbers import NumberOutOfRange, dumps_exact
from policies.paths import NOTHING, Node, Release, release_root
from policies.routes import Route
from policies.treatments import pseudonymise
from policies.verdicts import released

__all__ = [
    "Held",
    "Walk",
    "besides",
    "carrier",
    "release_fields",
    "release_topic",
    "release_whole",
]


@dataclass(slots=True)  # not frozen: one per applying grant per message, frozen __init__ costs 2x
class Walk:
    """A grant that applies to the message now, its release still to build."""

    grant: CompiledGrant
    key: bytes | None
    topic: str
    shared: list[str]  # topic levels released as they are
    altered: list[Alteration]  # topic levels pseudonymised


@dataclass(frozen=True, slots=True)
class Held:
    """Nothing of the message leaves under the grant, and why; ``rel``: the walk's problems."""

    reason: Reason
    rel: Release | None = None


def release_topic(
    route: Route,
    grant: CompiledGrant,
    topic: str,
    captures: Mapping[str, str],
    key: bytes | None,
) -> tuple[str, list[str], list[Alteration]]:
    """The topic ``grant`` releases to for a message on ``topic``, with the topic levels it
    shares as they are (``$topic``, ``$topic.<name>``) and those it pseudonymises with ``key``
    (which the engine fetched when the grant needs one). A template without device captures
    renders once per route and grant, then comes from ``route.topics``."""
    template = grant.template
    if grant.static_topic:
        static = route.topics.get(grant.id)
        if static is None:
            static = route.topics[grant.id] = template.render(
                {
                    "customer": route.policy.customer,
                    "device": route.device.id,
                    "stream": route.stream,
                }
            )
        return static, [], []
    values = {
        "customer": route.policy.customer,
        "device": route.device.id,
        "stream": route.stream,
        "topic": topic,
    }
    shared: list[str] = ["$topic"] if "topic" in template.names else []
    altered: list[Alteration] = []
    for name in template.captures:
        if grant.topic_levels[name] == "pseudonymise":
            assert key is not None
            values[name] = pseudonymise(captures[name], key)
            altered.append(grant.topic_alterations[name])
        else:
            values[name] = captures[name]
            shared.append(f"$topic.{name}")
    return template.render(values), shared, altered


def release_whole(route: Route, walk: Walk, parsed: Parsed) -> Decision | Held:
    """The body as one value (``$payload``); overlapping grants alter nothing inside it
    (``policies.overlaps`` refuses a policy where they would)."""
    grant = walk.grant
    assert grant.whole is not None
    rel = Release(walk.key)
    got = grant.whole.apply(parsed.root, "$payload", None, rel)
    if got is NOTHING:
        return Held(rel.problems.get("$payload", Reason("nothing_released")), rel)
    if grant.whole.fn is None:
        body = parsed.raw  # keep: the exact bytes, literals like 23.20 untouched
    elif parsed.state == TEXT and isinstance(got, str):
        body = got.encode("utf-8", errors="surrogatepass")
    else:
        body = orjson.dumps(got)
    return _released(route, walk, body, rel)


def release_fields(
    route: Route, walk: Walk, parsed: Parsed, *, key: bytes | None, shadows: list[Node]
) -> Decision | Held:
    """The fields ``walk.grant`` names, each in the most protective treatment the applying
    grants' ``shadows`` allow (none: the grant's own walk, the fast path)."""
    grant = walk.grant
    rel = Release(key)
    # The literal-keeping tree: a kept 23.20 or 2**70 leaves as the device wrote it.
    if shadows:
        out = release_with(parsed.exact(), grant.trie, shadows, rel)
    else:
        out = release_root(parsed.exact(), grant.trie, rel)
    if not out:
        return Held(next(iter(rel.problems.values()), grant.nothing_reason), rel)
    try:
        body = dumps_exact(out)
    except NumberOutOfRange:  # inside a kept object; a kept number says its field
        return Held(Reason("out_of_range", {"field": "$payload"}))
    return _released(route, walk, body, rel)


def _released(route: Route, walk: Walk, body: bytes, rel: Release) -> Decision:
    return released(
        route,
        walk.grant,
        walk.topic,
        body=body,
        shared=(*rel.shared.items, *walk.shared),  # tuples: ``released`` keeps them as they are
        altered=(*rel.altered.items, *walk.altered),
        withheld=tuple(rel.withheld.items),
        opaque=False,
        field_reasons=rel.problems,
        omitted=rel.omitted(),
        raised_by=tuple(sorted(rel.raised_by)) if rel.raised_by else (),
    )


def carrier(releases: Sequence[Decision]) -> Callable[[str], str | None]:
    """Several releases to one recipient: for a leaf's path, the grant of the release that
    carries it (the first by grant id; a body released whole carries every leaf), or None when
    none does. The one rule ``besides``, ``policy explain`` and the TUI's entry view share."""
    carriers: dict[str, str] = {}
    whole: str | None = None
    for d in sorted(releases, key=lambda d: d.grant or ""):
        for path in (*d.shared, *(a.path for a in d.altered)):
            carriers.setdefault(path, d.grant or "")
            if path == "$payload" and whole is None:
                whole = d.grant or ""

    def carried(path: str) -> str | None:
        return whole if whole is not None else carriers.get(path)

    return carried


def besides(releases: list[Decision]) -> list[Decision]:
    """Several releases to one recipient: a leaf one of them carries is not "kept here" in the
    others' explanations (it did reach the recipient); each still lists only what it carries."""
    carried = carrier(releases)
    return [
        replace(d, withheld=tuple(p for p in d.withheld if carried(p) is None)) for d in releases
    ]
