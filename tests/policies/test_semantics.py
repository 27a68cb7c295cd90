"""Properties across the one semantic core (``policies.paths``): what leaves, what the decision
and the explanation list, what the report calls "never passed on" and what ``describe`` promises
are one computation.

A few thousand examples in CI; ``EINBLICK_HYPOTHESIS=long`` runs fifty times as many.
"""

from __future__ import annotations

import os
import re
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from gateway.log.documents import ShownBody
from gateway.log.results import ReportGroup
from gateway.rights.report import _never_shared
from policies.compiler import compile_policy
from policies.decision import Decision, Outcome
from policies.describe import describe
from policies.engine import Engine
from policies.errors import PolicyError
from policies.explain import treatment_text
from policies.listing import leaves
from policies.loader import check_references
from policies.message import Message
from policies.model import PolicyDocument
from policies.paths import specificity
from policies.semantics import leaf_verdicts

from .conftest import NOW, Keys, policy_dict

LONG = os.environ.get("EINBLICK_HYPOTHESIS") == "long"
EXAMPLES = 25_000 if LONG else 500  # five properties: 2,500 examples in CI
PROFILE = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TOPIC = "acme/dev/jjolie"
_INDEX = re.compile(r"\[\d+\]")

KEYS = st.sampled_from(["a", "b", "c", "name"])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=6)
    | st.sampled_from(["19.2", "2026-06-03T09:29:41Z", "Hans Maier"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=3),
    max_leaves=10,
)
payloads = st.dictionaries(KEYS, values, min_size=1, max_size=4)
segments = st.tuples(st.sampled_from(["a", "b", "c", "name", "*"]), st.sampled_from(["", "", "[]"]))
field_paths = st.lists(segments, min_size=1, max_size=3).map(
    lambda segs: ".".join(k + a for k, a in segs)
)
treatments = st.sampled_from(
    ["keep", "pseudonymise", {"round": 0.5}, {"round": 10}, {"truncate": "minute"}]
)
grant_fields = st.dictionaries(field_paths, treatments, min_size=1, max_size=5)


def _name(treatment: Any) -> str:
    return treatment if isinstance(treatment, str) else str(next(iter(treatment)))


def _engine(*grants: dict[str, Any]) -> Engine:
    """``make_engine`` without the YAML round trip (thousands of examples)."""
    try:
        doc = PolicyDocument.model_validate(policy_dict(*grants))
        check_references(doc)
        return Engine([compile_policy(doc, {"r1": "R1", "r2": "R2"})], Keys())
    except (PolicyError, ValidationError):
        assume(False)
        raise


def _decide(engine: Engine, payload: Any) -> list[Decision]:
    return engine.evaluate(Message(TOPIC, orjson.dumps(payload), NOW), NOW)


def _tokens(path: str) -> list[tuple[str, str]]:
    """``a.b[0].c`` -> key a, key b, element, key c; ``*`` and ``[]`` in grant paths alike."""
    out: list[tuple[str, str]] = []
    for segment in re.split(r"\.(?![^\[]*\])", path):
        name = segment.split("[", 1)[0]
        out.append(("key", name))
        out.extend(("elem", "") for _ in re.findall(r"\[\d*\]", segment))
    return out


def _names(pattern: str, leaf: str) -> bool:
    """True when the grant path ``pattern`` names ``leaf`` or one of its parents."""
    p, lf = _tokens(pattern), _tokens(leaf)
    if len(p) > len(lf):
        return False
    return all(
        pk == lk and (pv in ("*", lv) if pk == "key" else True)
        for (pk, pv), (lk, lv) in zip(p, lf, strict=False)
    )


def _deciding(fields: dict[str, Any], leaf: str) -> str | None:
    """The reference: of the grant paths naming the leaf, the most specific (or None)."""
    naming = [p for p in fields if _names(p, leaf)]
    return max(naming, key=specificity) if naming else None


def _fold(path: str) -> str:
    return _INDEX.sub("[]", path)


def _under_any(path: str, leaves_: set[str]) -> bool:
    """True when ``path`` is one of ``leaves_`` or holds one of them."""
    return path in leaves_ or any(leaf.startswith((path + ".", path + "[")) for leaf in leaves_)


def _under(path: str, listed: set[str]) -> bool:
    return path in listed or any(path.startswith((p + ".", p + "[")) for p in listed)


@PROFILE
@given(fields=grant_fields, payload=payloads)
def test_released_leaves_are_exactly_what_the_explanation_lists(
    fields: dict[str, Any], payload: dict[str, Any]
) -> None:
    engine = _engine({"fields": fields})
    (decision,) = _decide(engine, payload)
    # small payloads: every list is complete (only field problems are capped, at 8)
    assert not {k for k in decision.omitted if k != "field_reasons"}
    shared = set(decision.shared)
    altered = {a.path for a in decision.altered}
    if decision.payload is None:
        assert decision.outcome is Outcome.WITHHELD and not shared and not altered
        return
    out = orjson.loads(decision.payload)
    # Decisions name input indices; a released array keeps only the elements something left
    # from, so its indices shift: compare with indices folded (``r[]``).
    released = {_fold(leaf) for leaf in leaves(out, "")}
    folded_shared = {_fold(p) for p in shared}
    folded_altered = {_fold(p) for p in altered}
    # Every released leaf is listed as shared or lies at/under an altered path, and back.
    for leaf in released:
        assert leaf in folded_shared or _under(leaf, folded_altered), (leaf, fields, payload)
    for path in folded_shared:
        assert path in released, (path, fields, payload)
    for path in folded_altered:
        assert _under_any(path, released), (path, fields, payload)
    # Each leaf of the input is in exactly one of the three lists (or under one entry).
    withheld = set(decision.withheld)
    for leaf in leaves(payload, ""):
        hits = [leaf in shared, _under(leaf, altered), _under(leaf, withheld)]
        assert sum(hits) == 1, (leaf, hits, fields, payload)
    # The explanation names every shared and altered field, as the decision lists them.
    text = engine.explain(decision, "en")
    for path in {_INDEX.sub("[]", p) for p in shared | altered}:
        assert path in text, (path, text)


@PROFILE
@given(fields=grant_fields, payload=payloads)
def test_every_leaf_gets_the_treatment_of_the_most_specific_path_describe_lists(
    fields: dict[str, Any], payload: dict[str, Any]
) -> None:
    engine = _engine({"fields": fields})
    (decision,) = _decide(engine, payload)
    (policy,) = engine.policies()
    promised = describe(policy, "en")
    altered = {a.path: a.treatment for a in decision.altered}
    for leaf in leaves(payload, ""):
        rule = _deciding(fields, leaf)
        if rule is None:
            assert _under(leaf, set(decision.withheld)), (leaf, fields, payload)
            continue
        treatment = fields[rule]
        # describe lists the deciding line with its treatment, word for word
        how = "unchanged" if treatment == "keep" else None
        if how is None and _name(treatment) != "pseudonymise":
            detail = str(treatment.get("round", treatment.get("truncate")))
            how = treatment_text(
                "en", _name(treatment), f"{float(detail):g}" if "round" in treatment else detail
            )
        assert f"{'every other field (*)' if rule == '*' else rule} " in promised
        if how is not None:
            assert how in promised
        if decision.payload is None or _under(leaf, set(decision.withheld)):
            # withheld only because the treatment could not apply (or nothing was released)
            assert treatment != "keep" or decision.payload is None, (leaf, fields, payload)
            continue
        if treatment == "keep":
            assert leaf in decision.shared, (leaf, rule, fields, payload)
        else:
            found = [
                t for p, t in altered.items() if leaf == p or leaf.startswith((p + ".", p + "["))
            ]
            assert found == [_name(treatment)], (leaf, rule, found, fields, payload)


@PROFILE
@given(
    first=grant_fields,
    second=grant_fields,
    messages=st.lists(payloads, min_size=1, max_size=4),
)
def test_nothing_the_report_calls_never_passed_on_appears_in_any_released_payload(
    first: dict[str, Any], second: dict[str, Any], messages: list[dict[str, Any]]
) -> None:
    engine = _engine({"fields": first}, {"recipient": "r2", "fields": second})
    groups: list[ReportGroup] = []
    released: set[str] = set()
    for payload in messages:
        for decision in _decide(engine, payload):
            body: ShownBody = {
                "kind": "decision",
                "customer": "c",
                "device": decision.device,
                "recipient": decision.recipient,
                "outcome": str(decision.outcome),
                "grant": None,
                "policy_version": None,
                "purpose": {},
                "legal_basis": None,
                "reason": None,
                "subject": None,
                "shared": list(decision.shared),
                "altered": [[a.path, a.treatment, a.detail] for a in decision.altered],
                "withheld": list(decision.withheld),
                "reason_params": {},
                "text_de": "",
                "text_en": "",
                "omitted": dict(decision.omitted),
            }
            groups.append(ReportGroup(body, 1, 0, 0))
            if decision.payload is not None:
                out = orjson.loads(decision.payload)
                released |= {_INDEX.sub("[]", leaf) for leaf in leaves(out, "")}
    (never,) = _never_shared(None, groups)
    for field in never["fields"]:
        assert not _under(field, released), (field, released)
    if never["nothing_left"]:
        assert not released


@PROFILE
@given(fields=grant_fields, payload=payloads, order=st.randoms(use_true_random=False))
def test_the_order_of_a_grants_fields_never_changes_what_leaves(
    fields: dict[str, Any], payload: dict[str, Any], order: Any
) -> None:
    items = list(fields.items())
    order.shuffle(items)
    a = _decide(_engine({"fields": fields}), payload)[0]
    b = _decide(_engine({"fields": dict(items)}), payload)[0]
    assert a.payload == b.payload
    assert set(a.shared) == set(b.shared) and set(a.withheld) == set(b.withheld)
    assert set(a.altered) == set(b.altered)


@PROFILE
@given(fields=grant_fields, payload=payloads)
def test_leaf_verdicts_are_the_decision_and_name_the_most_specific_rule(
    fields: dict[str, Any], payload: dict[str, Any]
) -> None:
    engine = _engine({"fields": fields})
    (decision,) = _decide(engine, payload)
    (policy,) = engine.policies()
    verdicts = leaf_verdicts(policy.grants[0], payload, key=Keys().key("acme", "r1"))
    by = {v.verdict: {x.path for x in verdicts if x.verdict == v.verdict} for v in verdicts}
    if decision.payload is not None:
        assert by.get("shared", set()) == set(decision.shared)
        assert by.get("altered", set()) == {a.path for a in decision.altered}
        assert by.get("withheld", set()) == set(decision.withheld)
    for v in verdicts:
        if v.verdict in ("shared", "altered"):
            assert v.rule == _deciding(fields, v.path) or _name(fields[v.rule]) == "coarsen", (
                v,
                fields,
            )
        elif v.rule is None:
            assert _deciding(fields, v.path) is None, (v, fields, payload)
