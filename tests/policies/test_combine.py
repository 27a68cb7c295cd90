"""Grant order never changes the outcome: grants for one recipient combine field by field, each
leaf in the most protective treatment of the grants that apply now (``policies.combine``)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from pydantic import ValidationError

from policies.combine import most_protective, release_with
from policies.compiler import compile_policy
from policies.decision import Decision, Outcome
from policies.describe import describe, what_is_sent
from policies.engine import Engine
from policies.errors import PolicyError
from policies.loader import check_references
from policies.message import Message
from policies.model import PolicyDocument
from policies.paths import Node, Release, Rule, insert, release_root
from policies.semantics import across_releases, leaf_verdicts

from .conftest import NOW, Keys, make_engine, policy_dict
from .test_semantics import KEYS, PROFILE, _deciding, field_paths, grant_fields, values

TOPIC = "acme/dev/jjolie"
NIGHT = datetime(2026, 6, 3, 21, 30, tzinfo=UTC)  # 23:30 in Berlin
KEY = Keys().key("acme", "r1")
assert KEY is not None


def _releases(engine: Engine, payload: dict[str, Any], now: datetime = NOW) -> list[Decision]:
    return engine.evaluate(Message(TOPIC, orjson.dumps(payload), now), now)


def _outcome(decisions: list[Decision]) -> set[tuple[object, ...]]:
    return {
        (
            d.recipient,
            d.grant,
            d.outcome,
            d.topic,
            d.payload,
            frozenset(d.shared),
            frozenset(d.altered),
            frozenset(d.withheld),
            (d.reason.code, tuple(sorted(d.reason.params.items()))) if d.reason else None,
            d.raised_by,
        )
        for d in decisions
    }


def _every_order(*grants: dict[str, Any]) -> list[Engine]:
    """One engine per order of ``grants`` (ids stay with their grant)."""
    named = [{"id": f"g{index + 1}", **grant} for index, grant in enumerate(grants)]
    return [make_engine(*order) for order in itertools.permutations(named)]


def _payloads(decisions: list[Decision]) -> dict[str | None, Any]:
    return {d.grant: orjson.loads(d.payload) for d in decisions if d.payload is not None}


MESSAGE = {"driver": {"name": "Hans Maier", "id": 17}, "speed": 42}


def test_the_readme_example_pseudonymises_the_name_in_every_release_in_every_order() -> None:
    # Today's rule let the first grant in the file decide: with "*": keep first, the name left
    # raw. Now the pseudonym of the other grant is the more protective treatment of that leaf.
    engines = _every_order({"fields": {"*": "keep"}}, {"fields": {"driver.name": "pseudonymise"}})
    outcomes = [_outcome(_releases(engine, MESSAGE)) for engine in engines]
    assert outcomes[0] == outcomes[1]
    decisions = _releases(engines[0], MESSAGE)
    payloads = _payloads(decisions)
    assert set(payloads) == {"g1", "g2"}
    name = payloads["g2"]["driver"]["name"]
    assert name != "Hans Maier" and len(name) == 20
    assert payloads["g1"] == {"driver": {"name": name, "id": 17}, "speed": 42}
    assert payloads["g2"] == {"driver": {"name": name}}
    assert "Hans Maier" not in str([d.payload for d in decisions])
    first = next(d for d in decisions if d.grant == "g1")
    assert first.raised_by == ("g2",)
    assert {a.path: a.treatment for a in first.altered} == {"driver.name": "pseudonymise"}
    text = engines[0].explain(first, "en")
    assert "driver.name replaced by a pseudonym" in text
    assert "treats a field more protectively (grant “g2”)" in text
    assert "Decided by grant “g1”" in text
    # g2's release keeps driver.id and speed back, but g1 sent them: not "kept here".
    second = next(d for d in decisions if d.grant == "g2")
    assert second.withheld == () and "Kept here" not in engines[0].explain(second, "en")


def test_a_star_in_one_grant_and_a_literal_in_another_leave_the_coarser_rounding() -> None:
    engines = _every_order(
        {"fields": {"*": {"round": 10}}},
        {"fields": {"temperature": {"round": 0.5}, "humidity": "keep"}},
    )
    payload = {"temperature": 181.26, "humidity": 41.3, "door": 1}
    assert _outcome(_releases(engines[0], payload)) == _outcome(_releases(engines[1], payload))
    payloads = _payloads(_releases(engines[0], payload))
    # The coarser of two roundings protects more, whichever grant names the field literally.
    assert payloads == {
        "g1": {"temperature": 180, "humidity": 40, "door": 0},
        "g2": {"temperature": 180, "humidity": 40},
    }


def test_hours_on_one_grant_only_its_treatment_counts_only_while_it_applies() -> None:
    engines = _every_order(
        {"fields": {"temperature": "keep", "operator": "keep"}},
        {"fields": {"temperature": {"round": 5}}, "hours": ["06:00-20:00"]},
    )
    payload = {"temperature": 181.26, "operator": "Anna"}
    for engine in engines:
        day = _payloads(_releases(engine, payload, NOW))
        # Both apply at 11:30: the raw temperature never leaves, in no release.
        assert day == {"g1": {"temperature": 180, "operator": "Anna"}, "g2": {"temperature": 180}}
    for engine in engines:
        # At 23:30 the rounding grant does not apply, so it constrains nothing.
        night = _payloads(_releases(engine, payload, NIGHT))
        assert night == {"g1": {"temperature": 181.26, "operator": "Anna"}}


def test_a_withdrawn_consent_grant_stops_constraining_and_releasing() -> None:
    consent = {
        "legal_basis": "consent",
        "consent": {"given_by": "Anna", "given_at": "2026-01-05T10:00:00Z"},
    }
    engines = _every_order(
        {"fields": {"operator": "pseudonymise", "t": "keep"}},
        {**consent, "fields": {"operator": "keep", "t": {"round": 1}}},
    )
    payload = {"operator": "Anna", "t": 20.4}
    for engine in engines:
        both = _payloads(_releases(engine, payload))
        assert both["g1"]["t"] == both["g2"]["t"] == 20
        assert both["g1"]["operator"] == both["g2"]["operator"] != "Anna"
        engine.withdraw("acme", "g2", NOW)
        alone = _payloads(_releases(engine, payload))
        assert alone == {"g1": {"operator": both["g1"]["operator"], "t": 20.4}}


def test_nothing_released_reason_is_the_same_in_every_order() -> None:
    engines = _every_order(
        {"fields": {"a": "keep"}, "when": [{"field": "x", "equals": 1}]},
        {"fields": {"b": "keep"}, "hours": ["22:00-23:00"]},
    )
    reasons = [[d.reason for d in _releases(engine, {"a": 1, "x": 2})] for engine in engines]
    assert reasons[0] == reasons[1]
    assert [r.code for r in reasons[0] if r] == ["condition_not_met"]  # g1 first, by id


def test_describe_names_the_overlapping_grants_in_every_order() -> None:
    engines = _every_order({"fields": {"*": "keep"}}, {"fields": {"driver.name": "pseudonymise"}})
    texts = []
    for engine in engines:
        (policy,) = engine.policies()
        text = describe(policy, "en")
        assert "Overlaps grant “g2” (same recipient, same device data)" in text
        assert "Overlaps grant “g1” (same recipient, same device data)" in text
        assert "Überschneidet sich mit Freigabe „g2“" in describe(policy, "de")
        texts.append({line for line in text.splitlines() if "version" not in line})
        # "Who gets what" (the TUI, the portal) shows each grant in these words too.
        first = next(g for g in policy.grants if g.id == "g1")
        assert "Overlaps grant “g2”" in what_is_sent("en", first)[-1]
    assert texts[0] == texts[1]


def test_leaf_verdicts_with_the_other_applying_grants_are_the_release() -> None:
    engine = make_engine({"fields": {"*": "keep"}}, {"fields": {"driver.name": "pseudonymise"}})
    (policy,) = engine.policies()
    first, second = policy.grants
    verdicts = leaf_verdicts(first, MESSAGE, key=KEY, others=[second])
    by_path = {v.path: v for v in verdicts}
    assert by_path["driver.name"].verdict == "altered"
    assert by_path["driver.name"].grant == "g2" and by_path["driver.name"].rule == "driver.name"
    assert by_path["speed"].verdict == "shared" and by_path["speed"].grant == "g1"
    release = next(d for d in _releases(engine, MESSAGE) if d.grant == "g1")
    assert {v.path for v in verdicts if v.verdict == "shared"} == set(release.shared)
    # Alone, the same grant keeps the name: the verdicts are the grant's own.
    alone = {v.path: v.verdict for v in leaf_verdicts(first, MESSAGE, key=KEY)}
    assert alone["driver.name"] == "shared"


# -- the rule itself ----------------------------------------------------------------------------

KEEP = Rule("keep", "", grant="a")
PSEUDO = Rule("pseudonymise", "", lambda v, p, r: "P", grant="b")
ROUND_1 = Rule("round", "1", lambda v, p, r: round(v), level=1.0, grant="a")  # type: ignore[call-overload]
ROUND_10 = Rule("round", "10", lambda v, p, r: 10 * round(v / 10), level=10.0, grant="b")  # type: ignore[operator]
SUMMARY = Rule("aggregate", "60 s", grant="c")


@pytest.mark.parametrize(
    ("own", "others", "expected"),
    [
        (KEEP, [PSEUDO], PSEUDO),
        (PSEUDO, [KEEP], PSEUDO),
        (ROUND_1, [ROUND_10], ROUND_10),
        (ROUND_10, [ROUND_1, KEEP], ROUND_10),
        (KEEP, [ROUND_1, SUMMARY], SUMMARY),
        (PSEUDO, [ROUND_1], None),  # two kinds: cannot be ordered
        (KEEP, [KEEP], KEEP),  # a tie keeps the grant's own rule
    ],
)
def test_most_protective(own: Rule, others: list[Rule], expected: Rule | None) -> None:
    assert most_protective(own, others) is expected
    assert most_protective(own, list(reversed(others))) is expected


def test_different_kinds_at_run_time_withhold_the_leaf() -> None:
    # policies.overlaps refuses such a policy; should a pair reach a message, it fails closed.
    trie, shadow = Node(), Node()
    insert(trie, "t", ROUND_1)
    insert(trie, "u", KEEP)
    insert(shadow, "t", PSEUDO)
    rel = Release(KEY)
    assert release_with({"t": 20.4, "u": 1}, trie, [shadow], rel) == {"u": 1}
    assert rel.withheld.items == ["t"]
    assert rel.problems["t"].params["problem"] == "conflict"


def test_without_shadows_the_walk_is_the_grants_own() -> None:
    trie = Node()
    insert(trie, "*", KEEP)
    insert(trie, "a.b", ROUND_1)
    payload = {"a": {"b": 1.4, "c": [1, {"d": 2}]}, "e": None}
    own, combined = Release(KEY), Release(KEY)
    assert release_with(payload, trie, [], combined) == release_root(payload, trie, own)
    assert combined.shared.items == own.shared.items
    assert combined.withheld.items == own.withheld.items


def test_a_kept_array_is_walked_for_a_shadow_inside_it() -> None:
    trie, shadow = Node(), Node()
    insert(trie, "readings", KEEP)
    insert(shadow, "readings[].who", PSEUDO)
    rel = Release(KEY)
    out = release_with({"readings": [{"who": "x", "v": 1}, 3]}, trie, [shadow], rel)
    assert out == {"readings": [{"who": "P", "v": 1}, 3]}
    assert rel.raised_by == {"b"}


def test_an_empty_release_for_one_grant_still_constrains_the_other() -> None:
    # g2 applies (its condition holds) but the message has nothing it names except the name:
    # its pseudonym still governs the name in g1's release.
    engine = make_engine(
        {"fields": {"driver": "keep"}},
        {"fields": {"driver.name": "pseudonymise", "missing": "keep"}},
    )
    payloads = _payloads(_releases(engine, {"driver": {"name": "Hans"}}))
    assert payloads["g1"]["driver"]["name"] != "Hans"
    assert all(d.outcome is not Outcome.WITHHELD for d in _releases(engine, MESSAGE))


# -- properties ---------------------------------------------------------------------------------

FAMILIES = {
    "pseudonymise": ["pseudonymise"],
    "round": [{"round": 0.5}, {"round": 10}],
    "truncate": [{"truncate": "minute"}, {"truncate": "hour"}],
}


# Paths one or two levels deep, mostly without arrays, so that two grants' paths often name
# leaves of the same message (deeper ones come from the semantic core's own generator).
near_paths = st.one_of(
    st.lists(st.sampled_from(["a", "b", "c", "name", "*"]), min_size=1, max_size=2).map(".".join),
    field_paths,
)
messages = st.dictionaries(KEYS, values, min_size=2, max_size=4)


@st.composite
def grant_sets(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Two or three grants for r1 (sometimes one for r2), treatments from keep and one family
    (two kinds on one field would be refused), some with hours or a condition."""
    family = FAMILIES[draw(st.sampled_from(sorted(FAMILIES)))]
    treatment = st.sampled_from(["keep", *family])
    grants = []
    for index in range(draw(st.integers(2, 3))):
        grant: dict[str, Any] = {
            "id": f"g{index + 1}",
            "fields": draw(st.dictionaries(near_paths, treatment, min_size=1, max_size=4)),
        }
        # Mostly grants that apply at NOW, so releases meet; some that do not.
        hours = draw(st.sampled_from([None, None, "06:00-20:00", "22:00-23:00"]))
        if hours is not None:
            grant["hours"] = [hours]
        if draw(st.integers(0, 3)) == 0:
            grant["when"] = [{"field": "a", "equals": draw(st.sampled_from([1, "x"]))}]
        if index == 2 and draw(st.booleans()):
            grant["recipient"] = "r2"
        grants.append(grant)
    return grants


def _applies(grant: dict[str, Any], payload: dict[str, Any]) -> bool:
    """The reference for "applies now" at NOW (11:30 in Berlin)."""
    if grant.get("hours") == ["22:00-23:00"]:
        return False
    when = grant.get("when")
    return not when or (
        payload.get("a") == when[0]["equals"] and type(payload.get("a")) is type(when[0]["equals"])
    )


def _engine_or_skip(*grants: dict[str, Any]) -> Engine:
    try:
        doc = PolicyDocument.model_validate(policy_dict(*grants))
        check_references(doc)
        return Engine([compile_policy(doc, {"r1": "R1", "r2": "R2"})], Keys())
    except (PolicyError, ValidationError):
        assume(False)
        raise


def _statements(engine: Engine) -> set[str]:
    (policy,) = engine.policies()
    return {line for line in describe(policy, "en").splitlines() if "version" not in line}


@PROFILE
@given(grants=grant_sets(), payload=messages, order=st.randoms(use_true_random=False))
def test_permuting_grants_never_changes_releases_explanations_or_describe(
    grants: list[dict[str, Any]], payload: dict[str, Any], order: Any
) -> None:
    shuffled = list(grants)
    order.shuffle(shuffled)
    a, b = _engine_or_skip(*grants), _engine_or_skip(*shuffled)
    decided = _releases(a, payload)
    assert _outcome(decided) == _outcome(_releases(b, payload)), (grants, shuffled, payload)
    assert _statements(a) == _statements(b)
    # The explanations list the same shared and altered fields whatever the order.
    texts_a = {a.explain(d, "en").rsplit(" of policy version", 1)[0] for d in decided}
    texts_b = {b.explain(d, "en").rsplit(" of policy version", 1)[0] for d in _releases(b, payload)}
    assert texts_a == texts_b


@PROFILE
@given(grants=grant_sets(), payload=messages)
def test_no_leaf_leaves_less_protected_than_an_applying_grant_says(
    grants: list[dict[str, Any]], payload: dict[str, Any]
) -> None:
    engine = _engine_or_skip(*grants)
    (policy,) = engine.policies()
    by_id = {g["id"]: g for g in grants}
    for decision in _releases(engine, payload):
        if decision.payload is None:
            continue
        me = by_id[decision.grant or ""]
        others = [
            g
            for g in grants
            if g is not me
            and g.get("recipient", "r1") == me.get("recipient", "r1")
            and _applies(g, payload)
        ]
        for leaf in decision.shared:
            for other in others:
                rule = _deciding(other["fields"], leaf)
                # Kept raw only where no applying grant for the recipient treats it.
                assert rule is None or other["fields"][rule] == "keep", (leaf, grants, payload)
        # The semantic core says the same, given the grants that apply with it.
        grant = policy.grant(me["id"])
        assert grant is not None
        applying = [policy.grant(g["id"]) for g in others]
        verdicts = leaf_verdicts(
            grant, payload, key=KEY, others=[g for g in applying if g is not None]
        )
        assert {v.path for v in verdicts if v.verdict == "shared"} == set(decision.shared)
        assert {v.path for v in verdicts if v.verdict == "altered"} == {
            a.path for a in decision.altered
        }


@PROFILE
@given(grants=grant_sets(), payload=messages)
def test_field_lines_across_releases_say_what_each_releases_explanation_says(
    grants: list[dict[str, Any]], payload: dict[str, Any]
) -> None:
    # ``policy explain`` lists every release to a recipient with its leaves; a leaf one release
    # leaves out and another carries is "elsewhere", never "withheld": as the log's explanation
    # (``besides``) never calls it "kept here".
    engine = _engine_or_skip(*grants)
    (policy,) = engine.policies()
    by_recipient: dict[str | None, list[tuple[Decision, Any]]] = {}
    for decision in _releases(engine, payload):
        grant = policy.grant(decision.grant or "")
        if decision.payload is None or grant is None:
            continue
        applying = [
            policy.grant(g["id"])
            for g in grants
            if g["id"] != grant.id
            and g.get("recipient", "r1") == grant.recipient
            and _applies(g, payload)
        ]
        verdicts = leaf_verdicts(
            grant, payload, key=KEY, others=[g for g in applying if g is not None]
        )
        by_recipient.setdefault(decision.recipient, []).append((decision, verdicts))
    for releases in by_recipient.values():
        sent = {p: d.grant for d, _ in releases for p in (*d.shared, *(a.path for a in d.altered))}
        for decision, verdicts in across_releases(releases):
            body = [v for v in verdicts if not v.path.startswith("$topic")]
            withheld = {v.path for v in body if v.verdict == "withheld"}
            assert withheld == {p for p in decision.withheld if not p.startswith("$topic")}
            for v in body:
                if v.verdict == "elsewhere":
                    assert v.path in sent and v.grant != decision.grant, (v, grants, payload)


# Long keys and many of them reach the caps of ``policies.listing`` (cut keys, full lists).
_wide_messages = st.dictionaries(
    st.one_of(KEYS, st.text(alphabet="xy", min_size=38, max_size=45)),
    values,
    min_size=1,
    max_size=40,
)


@PROFILE
@given(fields=grant_fields, payload=st.one_of(messages, _wide_messages))
def test_the_grants_own_walk_is_the_plain_walk(
    fields: dict[str, Any], payload: dict[str, Any]
) -> None:
    # ``release_root`` takes shortcuts for a grant alone (literal keys, one lookup per key, a
    # scalar withheld without ``collect``); the plain candidate walk of ``release_with`` with
    # no other grant takes none. They must release and record exactly the same.
    engine = _engine_or_skip({"id": "g1", "fields": fields})
    (policy,) = engine.policies()
    trie = policy.grants[0].trie
    own, plain = Release(KEY), Release(KEY)
    assert release_root(payload, trie, own) == release_with(payload, trie, [], plain)
    for name in ("shared", "altered", "withheld"):
        mine, theirs = getattr(own, name), getattr(plain, name)
        assert (mine.items, mine.total, mine.chars) == (theirs.items, theirs.total, theirs.chars)
    assert (own.problems, own.problems_more) == (plain.problems, plain.problems_more)
    assert own.omitted() == plain.omitted()
