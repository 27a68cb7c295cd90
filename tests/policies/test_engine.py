"""The engine: one decision per recipient, every Reason code, consent lifecycle, properties."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import orjson
import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from policies.compiler import compile_policy
from policies.decision import Outcome
from policies.engine import Engine
from policies.errors import PolicyError
from policies.listing import leaves
from policies.loader import load_policy_text
from policies.message import Message
from policies.treatments import decimals_of, pseudonymise, round_to, truncate

from .conftest import NOW, Keys, compile_text, corpus, make_engine, policy_dict

TOPIC = "acme/dev/jjolie"


def msg(payload: bytes | str, topic: str = TOPIC) -> Message:
    body = payload.encode() if isinstance(payload, str) else payload
    return Message(topic, body, NOW)


def one(engine: Engine, payload: bytes | str, topic: str = TOPIC, now: Any = NOW) -> Any:
    (decision,) = engine.evaluate(msg(payload, topic), now)
    return decision


# -- Reason codes ---------------------------------------------------------------------------


class _Broken:
    def key(self, customer: str, recipient: str) -> bytes | None:
        raise RuntimeError("key store down")


REASONS: list[tuple[str, dict[str, Any], bytes, dict[str, Any]]] = [
    # (code, grant, payload, engine options)
    ("not_json", {"fields": {"t": "keep"}}, b"ON", {}),
    ("invalid_utf8", {"fields": {"t": "keep"}}, b"\xff\xfe\x00", {}),
    ("too_large", {"fields": {"t": "keep"}}, b'{"t": "' + b"x" * 100 + b'"}', {"max": 64}),
    (
        "expired",
        {"fields": {"t": "keep"}, "valid": {"until": "2026-01-01T00:00:00Z"}},
        b'{"t":1}',
        {},
    ),
    (
        "expired",
        {
            "fields": {"t": "keep"},
            "legal_basis": "consent",
            "consent": {
                "given_by": "A",
                "given_at": "2025-01-01T00:00:00Z",
                "until": "2026-01-01T00:00:00Z",
            },
        },
        b'{"t":1}',
        {},
    ),
    (
        "not_yet_valid",
        {"fields": {"t": "keep"}, "valid": {"from": "2027-01-01T00:00:00Z"}},
        b'{"t":1}',
        {},
    ),
    ("outside_hours", {"fields": {"t": "keep"}, "hours": ["12:00-13:00"]}, b'{"t":1}', {}),
    ("outside_hours", {"fields": {"t": "keep"}, "hours": ["22:00-06:00"]}, b'{"t":1}', {}),
    (
        "condition_not_met",
        {"fields": {"t": "keep"}, "when": [{"field": "t", "above": 100}]},
        b'{"t":50}',
        {},
    ),
    (
        "condition_not_met",
        {"fields": {"t": "keep"}, "when": [{"field": "s", "equals": "ON"}]},
        b'{"t":50}',
        {},
    ),
    ("nothing_released", {"fields": {"a": "keep"}}, b'{"b":1}', {}),
    ("nothing_released", {"fields": {"a": "keep"}}, b"[1,2]", {}),
    ("aggregating", {"aggregate": {"window": "5m", "fields": {"p": ["mean"]}}}, b'{"p":1}', {}),
    ("treatment_failed", {"fields": {"t": {"round": 0.5}}}, b'{"t":"warm"}', {}),
    ("erased", {"fields": {"t": "pseudonymise"}}, b'{"t":1}', {"erase": True}),
    ("internal_error", {"fields": {"t": "pseudonymise"}}, b'{"t":1}', {"broken": True}),
]


@pytest.mark.parametrize(
    ("code", "grant", "payload", "options"),
    REASONS,
    ids=[f"{r[0]}-{i}" for i, r in enumerate(REASONS)],
)
def test_every_reason(
    code: str, grant: dict[str, Any], payload: bytes, options: dict[str, Any]
) -> None:
    keys = Keys()
    if options.get("erase"):
        keys.erased.add(("acme", "r1"))
    text = yaml.safe_dump(policy_dict(grant), sort_keys=False)
    engine = Engine(
        [compile_text(text)],
        _Broken() if options.get("broken") else keys,  # type: ignore[arg-type]
        max_payload_bytes=options.get("max", 256 * 1024),
    )
    decision = one(engine, payload)
    assert decision.outcome is Outcome.WITHHELD
    assert decision.reason is not None and decision.reason.code == code
    assert decision.recipient == "r1" and decision.grant == "g1"
    assert decision.payload is None and decision.topic is None
    for lang in ("de", "en"):
        assert engine.explain(decision, lang)


def test_a_topic_another_instance_s_customer_takes_resolves_to_no_device_here() -> None:
    """In a cluster the engine asks ``disowned`` (gateway/messages/contested.py): such a topic
    is withheld whole, attributed to no one, with its own reason and words; the others are
    decided as ever. Without ``disowned`` (a lone gateway) nothing is asked."""
    engine = make_engine({"id": "g1", "recipient": "r1", "fields": {"temp": "keep"}})
    message = Message("acme/dev/anna", b'{"temp": 21}', NOW)
    assert engine.evaluate(message, NOW)[0].outcome is Outcome.SHARED
    engine.disowned = lambda topic: topic.endswith("/anna")
    (decision,) = engine.evaluate(message, NOW)
    assert decision.outcome is Outcome.WITHHELD and decision.customer is None
    assert decision.reason is not None and decision.reason.code == "claimed_elsewhere"
    assert engine.device_for("acme/dev/anna") is None
    assert engine.device_for("acme/dev/ben") is not None
    # No route here (a file of ours that does not run claims it): the same reason, not
    # "unknown device".
    engine.disowned = lambda topic: topic == "other/anna"
    (unrouted,) = engine.evaluate(Message("other/anna", b"{}", NOW), NOW)
    assert unrouted.reason is not None and unrouted.reason.code == "claimed_elsewhere"
    assert "another Einblick instance" in engine.explain(decision, "en")
    assert "andere Einblick-Instanz" in engine.explain(decision, "de")


def test_rate_limited_then_released_again() -> None:
    engine = make_engine({"fields": {"t": "keep"}, "rate_limit": "60s"})
    assert one(engine, b'{"t":1}').outcome is Outcome.SHARED
    limited = one(engine, b'{"t":2}', now=NOW + timedelta(seconds=30))
    assert limited.reason.code == "rate_limited" and limited.withheld == ("t",)
    assert one(engine, b'{"t":3}', now=NOW + timedelta(seconds=60)).outcome is Outcome.SHARED


def test_a_rate_limit_is_per_device_whatever_topic_levels_the_device_chooses() -> None:
    """ "At most one message per 60 s": the limit was kept per release topic, so a device
    naming a new captured level in each message got every one through, and each new level
    stayed in memory for good (~1.2 KB a message with 1,000-byte levels, never freed)."""
    engine = make_engine(
        {
            "fields": {"t": "keep"},
            "rate_limit": "60s",
            "topic": "up/{user}",
            "topic_levels": {"user": "keep"},
        }
    )
    outcomes = [
        one(engine, b'{"t":1}', topic=f"acme/dev/{'u' * 100}{i}", now=NOW + timedelta(seconds=i))
        for i in range(50)
    ]
    assert outcomes[0].outcome is Outcome.SHARED
    assert {d.reason.code for d in outcomes[1:]} == {"rate_limited"}
    assert len(engine._last_release) == 1
    # Another stream of the same device under the grant is the same device: limited too.
    status = one(engine, b'{"t":2}', topic="acme/dev/u0/status", now=NOW + timedelta(seconds=59))
    assert status.reason is not None and status.reason.code == "rate_limited"
    assert one(engine, b'{"t":3}', topic="acme/dev/v", now=NOW + timedelta(seconds=60)).outcome is (
        Outcome.SHARED
    )


# -- releases -------------------------------------------------------------------------------


def test_release_shape_topic_and_exact_paths() -> None:
    keys = Keys()
    engine = make_engine(
        {
            "topic": "up/{customer}/{device}/{user}",
            "topic_levels": {"user": "pseudonymise"},
            "fields": {
                "t": {"round": 0.5},
                "serial": "pseudonymise",
                "ts": {"truncate": "minute"},
                "sensors.*.temperature": "keep",
                "readings[].value": "keep",
            },
        },
        keys=keys,
    )
    payload = (
        b'{"t":"21.37","serial":"OV-1","operator":"Anna","ts":"2026-06-03T09:29:41Z",'
        b'"sensors":{"a":{"temperature":20,"id":"x"}},"readings":[{"value":1,"who":"b"}]}'
    )
    decision = one(engine, payload)
    key = keys.key("acme", "r1")
    assert key is not None
    assert decision.outcome is Outcome.ALTERED
    assert decision.topic == f"up/acme/dev/{pseudonymise('jjolie', key)}"
    assert "jjolie" not in decision.topic
    assert orjson.loads(decision.payload) == {
        "t": "21.5",
        "serial": pseudonymise("OV-1", key),
        "ts": "2026-06-03T09:29:00Z",
        "sensors": {"a": {"temperature": 20}},
        "readings": [{"value": 1}],
    }
    assert decision.shared == ("sensors.a.temperature", "readings[0].value")
    assert [(a.path, a.treatment, a.detail) for a in decision.altered] == [
        ("t", "round", "0.5"),
        ("serial", "pseudonymise", ""),
        ("ts", "truncate", "minute"),
        ("$topic.user", "pseudonymise", ""),
    ]
    assert decision.withheld == ("operator", "sensors.a.id", "readings[0].who")
    assert decision.stream == "telemetry" and decision.policy_version


def test_two_recipients_cannot_link_pseudonyms() -> None:
    engine = make_engine(
        {"fields": {"id": "pseudonymise"}}, {"recipient": "r2", "fields": {"id": "pseudonymise"}}
    )
    r1, r2 = engine.evaluate(msg(b'{"id":"45:e1:74:12:6e:00"}'), NOW)
    assert orjson.loads(r1.payload)["id"] != orjson.loads(r2.payload)["id"]


def test_plain_text_and_opaque_bodies() -> None:
    engine = make_engine(
        {"streams": ["status"], "fields": {"$payload": "keep"}},
        {"recipient": "r2", "streams": ["status"], "payload": "opaque"},
    )
    text, opaque = engine.evaluate(msg(b"Online", topic=TOPIC + "/status"), NOW)
    assert text.payload == b"Online" and text.shared == ("$payload",) and not text.opaque
    assert opaque.payload == b"Online" and opaque.opaque
    assert "without Einblick looking inside" in engine.explain(opaque, "en")
    # keep of the whole JSON body releases the exact bytes: literals like 23.20 survive
    exact = one(make_engine({"fields": {"$payload": "keep"}}), b'{"t": 23.20}')
    assert exact.payload == b'{"t": 23.20}'
    rounded = one(make_engine({"fields": {"$payload": {"round": 1}}}), b"19.6")
    assert rounded.payload == b"20.0"


def test_coarsen_pair_and_missing_half() -> None:
    engine = make_engine(
        {"fields": {"lat": {"coarsen": {"grid_m": 1000, "lon": "lon"}}, "batt": "keep"}}
    )
    full = one(engine, b'{"lat":52.195913,"lon":7.688245,"batt":75}')
    assert [a.path for a in full.altered] == ["lat", "lon"]
    half = one(engine, b'{"lon":8.688245,"batt":75}')
    assert orjson.loads(half.payload) == {"batt": 75}  # never half a location
    assert half.withheld == ("lon",) and half.field_reasons["lon"].code == "treatment_failed"
    assert "could not be altered" in engine.explain(half, "en")


# -- consent lifecycle ----------------------------------------------------------------------


def test_withdraw_give_still_allowed() -> None:
    keys = Keys()
    engine = make_engine({"fields": {"t": "pseudonymise"}}, keys=keys)
    assert engine.still_allowed("acme", "g1", NOW) is None
    engine.withdraw("acme", "g1", NOW)
    assert one(engine, b'{"t":1}').reason.code == "withdrawn"
    assert engine.still_allowed("acme", "g1", NOW).code == "withdrawn"
    engine.give("acme", "g1", NOW + timedelta(seconds=1))
    assert one(engine, b'{"t":1}').outcome is Outcome.ALTERED
    keys.erased.add(("acme", "r1"))
    assert engine.still_allowed("acme", "g1", NOW).code == "erased"
    assert engine.still_allowed("acme", "nope", NOW).code == "no_grant"
    with pytest.raises(PolicyError, match="no grant 'nope'"):
        engine.withdraw("acme", "nope", NOW)
    with pytest.raises(PolicyError, match="no policy"):
        engine.give("other", "g1", NOW)


def test_holds_back_answers_as_still_allowed_for_a_grant_looked_up() -> None:
    keys = Keys()
    engine = make_engine({"fields": {"t": "pseudonymise"}}, keys=keys)
    policy = engine.policy("acme")
    assert policy is not None
    grant = policy.grant("g1")
    assert grant is not None
    assert engine.holds_back("acme", grant, NOW) is None
    engine.withdraw("acme", "g1", NOW)
    held = engine.holds_back("acme", grant, NOW)
    assert held is not None and held == engine.still_allowed("acme", "g1", NOW)
    assert held.code == "withdrawn"
    engine.give("acme", "g1", NOW + timedelta(seconds=1))
    keys.erased.add(("acme", "r1"))
    erased = engine.holds_back("acme", grant, NOW)
    assert erased is not None and erased.code == "erased"


def test_replace_keeps_withdrawals_and_checks_overlaps() -> None:
    engine = make_engine({"fields": {"t": "keep"}})
    engine.withdraw("acme", "g1", NOW)
    text = yaml.safe_dump(policy_dict({"fields": {"t": "keep", "u": "keep"}}), sort_keys=False)
    engine.replace(compile_text(text))
    assert one(engine, b'{"t":1}').reason.code == "withdrawn"
    other = policy_dict({"fields": {"t": "keep"}}, customer="other")
    clash = compile_policy(load_policy_text(yaml.safe_dump(other)), {"r1": "R1"})
    with pytest.raises(PolicyError, match="overlaps"):
        engine.replace(clash)
    assert [p.customer for p in engine.policies()] == ["acme"]


# -- the real payload corpus -----------------------------------------------------------------


CORPUS = list(corpus())


def test_corpus_is_there() -> None:
    assert len(CORPUS) >= 20


@pytest.mark.parametrize("entry", CORPUS, ids=[f"{e['family']}-{i}" for i, e in enumerate(CORPUS)])
def test_corpus_through_a_catch_all_device(entry: dict[str, Any]) -> None:
    """Every real message, through a device that owns all topics and a grant that names every
    listed personal field as pseudonymised: never raises, never leaks a raw personal value."""
    paths = [p for p in entry["personal_fields"] if not p.startswith("$")]
    fields: dict[str, Any] = dict.fromkeys(paths, "pseudonymise")
    fields.update(
        {"temperature": {"round": 0.5}, "tempc": {"round": 1}, "Time": {"truncate": "hour"}}
    )
    doc = policy_dict({"fields": fields})
    doc["devices"][0]["topics"] = [{"pattern": "#"}]
    engine = Engine([compile_text(yaml.safe_dump(doc))], Keys())
    decisions = engine.evaluate(Message(entry["topic"], entry["payload"].encode(), NOW), NOW)
    assert len(decisions) == 1
    (decision,) = decisions
    assert entry["topic"] not in (decision.topic or "")
    if decision.payload is not None:
        body = orjson.loads(decision.payload)
        source = orjson.loads(entry["payload"])
        for path in paths:
            for where in leaves(source, ""):
                if re.sub(r"\[\d+\]", "[]", where) == path:
                    value = _get(source, where)
                    if isinstance(value, str) and len(value) > 3:
                        assert value not in decision.payload.decode()
        assert isinstance(body, dict)
    for lang in ("de", "en"):
        assert engine.explain(decision, lang)


def _get(root: Any, path: str) -> Any:
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        root = root[int(part[1:-1])] if part.startswith("[") else root[part]
    return root


def test_examples_on_the_corpus(engine: Engine) -> None:
    for entry in CORPUS:
        for decision in engine.evaluate(
            Message(entry["topic"], entry["payload"].encode(), NOW), NOW
        ):
            assert decision.reason is None or decision.reason.code != "internal_error"


# -- properties -----------------------------------------------------------------------------

KEYS = st.sampled_from(["a", "b", "c"])
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=8)
    | st.sampled_from(["19.2", "2026-06-03T09:29:41Z", "1699882482", "ON"])
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=3),
    max_leaves=12,
)
dict_values = st.recursive(
    json_scalars, lambda children: st.dictionaries(KEYS, children, max_size=3), max_leaves=12
)
segments = st.tuples(st.sampled_from(["a", "b", "c", "*"]), st.sampled_from(["", "", "[]"]))
paths = st.lists(segments, min_size=1, max_size=3).map(
    lambda segs: ".".join(k + a for k, a in segs)
)
treatments = st.sampled_from(
    ["keep", "pseudonymise", {"round": 0.5}, {"round": 10}, {"truncate": "minute"}]
)
grants_fields = st.dictionaries(paths, treatments, min_size=1, max_size=4)


def _engine_for(fields: dict[str, Any], **grant: Any) -> Engine:
    try:
        return make_engine({"fields": fields, **grant})
    except PolicyError:
        assume(False)
        raise


def _pattern(path: str) -> re.Pattern[str]:
    parts = []
    for segment in path.split("."):
        name = segment.rstrip("[]")
        arrays = (len(segment) - len(name)) // 2
        parts.append(("[^.\\[]+" if name == "*" else re.escape(name)) + "\\[\\]" * arrays)
    return re.compile("\\.".join(parts) + r"(?:$|[.\[])")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(fields=grants_fields, payload=st.dictionaries(KEYS, json_values, max_size=4))
def test_no_field_outside_a_grant_ever_leaves(fields: dict[str, Any], payload: Any) -> None:
    engine = _engine_for(fields)
    decision = one(engine, orjson.dumps(payload))
    patterns = [_pattern(p) for p in fields]
    if decision.payload is None:
        assert decision.outcome is Outcome.WITHHELD
        return
    out = orjson.loads(decision.payload)
    for where in leaves(out, ""):
        folded = re.sub(r"\[\d+\]", "[]", where)
        assert any(p.match(folded) for p in patterns), (where, fields)
    for path in [*decision.shared, *(a.path for a in decision.altered)]:
        assert any(p.match(re.sub(r"\[\d+\]", "[]", path)) for p in patterns)
    reported = set(decision.shared) | {a.path for a in decision.altered} | set(decision.withheld)
    for where in leaves(payload, ""):
        assert any(where == r or where.startswith((r + ".", r + "[")) for r in reported), where


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(fields=grants_fields, payload=st.dictionaries(KEYS, dict_values, max_size=4))
def test_every_released_value_is_its_treatment(fields: dict[str, Any], payload: Any) -> None:
    engine = _engine_for(fields)
    decision = one(engine, orjson.dumps(payload))
    if decision.payload is None:
        return
    out = orjson.loads(decision.payload)
    key = Keys().key("acme", "r1")
    assert key is not None
    for path in decision.shared:
        assert _get(out, path) == _get(payload, path)
    for alteration in decision.altered:
        value = _get(payload, alteration.path)
        expected: Any
        if alteration.treatment == "pseudonymise":
            expected = pseudonymise(value, key)
        elif alteration.treatment == "round":
            step = float(alteration.detail)
            expected = round_to(value, step, decimals_of(step))
        else:
            expected = truncate(value, alteration.detail)
        assert _get(out, alteration.path) == expected


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(fields=grants_fields, payload=json_values, withdraw=st.booleans())
def test_withdrawn_or_expired_grant_releases_nothing(
    fields: dict[str, Any], payload: Any, withdraw: bool
) -> None:
    if withdraw:
        engine = _engine_for(fields)
        engine.withdraw("acme", "g1", NOW)
    else:
        engine = _engine_for(fields, valid={"until": "2026-06-01T00:00:00Z"})
    decision = one(engine, orjson.dumps(payload))
    assert decision.outcome is Outcome.WITHHELD and decision.payload is None
    assert decision.reason.code == ("withdrawn" if withdraw else "expired")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    topic=st.text(max_size=30) | st.sampled_from([TOPIC, TOPIC + "/status", "acme/dev/"]),
    payload=st.binary(max_size=64) | json_values.map(orjson.dumps),
)
def test_evaluate_never_raises(topic: str, payload: bytes) -> None:
    engine = make_engine(
        {
            "fields": {"a": {"round": 0.5}, "b[].c": "pseudonymise", "*.t": {"truncate": "hour"}},
            "topic": "x/{user}",
            "topic_levels": {"user": "pseudonymise"},
            "rate_limit": "1s",
        },
        {"recipient": "r2", "payload": "opaque", "streams": ["status"]},
    )
    decisions = engine.evaluate(Message(topic, payload, NOW), NOW)
    assert decisions
    for decision in decisions:
        assert decision.reason is None or decision.reason.code != "internal_error"
        engine.explain(decision, "de")
