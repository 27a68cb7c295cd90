"""Numbers leave exactly as the device wrote them, or are withheld with a reason."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from policies.decision import Outcome
from policies.message import Message
from policies.numbers import Literal, dumps_exact, loads_exact, round_trips
from policies.treatments import pseudonymise

from .conftest import NOW, make_engine

TOPIC = "acme/dev/jjolie"

# (literal, what orjson alone made of it under `keep`)
LITERALS = [
    (b"23.20", b"23.2"),
    (b"123456789012345678901234567890", b"1.2345678901234568e+29"),
    (b"-9223372036854775809", b"-9.223372036854776e+18"),
    (b"18446744073709551616", b"1.8446744073709552e+19"),
    (b"-0", b"0"),
    (b"1E5", b"100000.0"),
    (b"1.0000000000000000000001", b"1.0"),
    (b"0.1e1", b"1.0"),
    (b"-1e-999", b"-0.0"),
    (b"1e-05", b"0.00001"),  # repr writes 1e-05, orjson 0.00001
]


@pytest.mark.parametrize(("literal", "before"), LITERALS)
def test_kept_numbers_leave_as_written(literal: bytes, before: bytes | None) -> None:
    engine = make_engine({"fields": {"n": "keep", "list": "keep", "deep.n": "keep"}})
    payload = b'{"n": %s, "list": [1, %s, 2.5], "deep": {"n": %s}, "x": 1}' % ((literal,) * 3)
    (decision,) = engine.evaluate(Message(TOPIC, payload, NOW), NOW)
    assert decision.outcome is Outcome.SHARED
    expected = b'{"n":%s,"list":[1,%s,2.5],"deep":{"n":%s}}' % ((literal,) * 3)
    assert decision.payload == expected
    # What a plain orjson round trip makes of it (what left before): a real change each time.
    if before is None:
        with pytest.raises(orjson.JSONDecodeError):
            orjson.loads(literal)
    else:
        assert orjson.dumps(orjson.loads(literal)) == before != literal


def test_plain_numbers_stay_plain_and_round_trip() -> None:
    tree = loads_exact('{"a": 21.5, "b": 7, "c": -3, "d": 0.1, "e": 9223372036854775807}')
    assert all(type(v) in (int, float) for v in tree.values())
    assert dumps_exact(tree) == b'{"a":21.5,"b":7,"c":-3,"d":0.1,"e":9223372036854775807}'


@pytest.mark.parametrize("text", ["NaN", "[Infinity]", '{"a": -Infinity}', "01", "1.", ""])
def test_what_json_forbids_stays_refused(text: str) -> None:
    with pytest.raises(ValueError):
        loads_exact(text)
    engine = make_engine({"fields": {"a": "keep"}})
    (decision,) = engine.evaluate(Message(TOPIC, text.encode(), NOW), NOW)
    assert decision.outcome is Outcome.WITHHELD
    assert decision.reason is not None and decision.reason.code in ("not_json", "nothing_released")


def test_an_unpaired_surrogate_behind_a_number_beyond_a_double_is_not_json_as_without_it() -> None:
    """orjson refuses ``"k\\ud800"`` (not JSON, withheld saying so); behind a ``1e999`` the
    exact parser took over and accepted it, and the withheld key could not be written into the
    log's canonical names document: the whole batch rolled back at the commit, every customer's
    tree was read again, and the message was withheld as an internal error with a traceback."""
    engine = make_engine({"fields": {"x": "keep"}})
    for payload in (
        b'{"k\\ud800": 1}',
        b'{"x": 1e999, "k\\ud800": 1}',
        b'{"x": 1e999, "s": ["\\udfff"]}',
    ):
        with pytest.raises(ValueError):
            loads_exact(payload.decode())
        (decision,) = engine.evaluate(Message(TOPIC, payload, NOW), NOW)
        assert decision.outcome is Outcome.WITHHELD, payload
        assert decision.reason is not None and decision.reason.code == "not_json", payload
    # A pair is one character: read, released, and a backslash-u in a string is text.
    paired = b'{"x": 1e999, "k\\ud83d\\ude00": 1, "t": "\\\\ud800"}'
    assert loads_exact(paired.decode())["k\U0001f600"] == 1
    (decision,) = engine.evaluate(Message(TOPIC, paired, NOW), NOW)
    assert decision.reason is not None and decision.reason.code == "out_of_range"


def test_treatments_on_numbers_beyond_doubles_withhold_with_a_reason() -> None:
    engine = make_engine({"fields": {"n": {"round": 1}, "m": "keep", "k": "keep"}})
    payload = b'{"n": 123456789012345678901234567890, "m": 2.50, "k": 7}'
    (decision,) = engine.evaluate(Message(TOPIC, payload, NOW), NOW)
    assert decision.payload == b'{"m":2.50,"k":7}'
    assert decision.withheld == ("n",)
    reason = decision.field_reasons["n"]
    assert reason.code == "treatment_failed" and reason.params["problem"] == "out_of_range"
    assert "out of range" in engine.explain(decision, "en")


def test_a_kept_number_beyond_a_double_is_withheld_with_a_reason_the_rest_leaves() -> None:
    # orjson refused 1e999 outright: the whole message was "not JSON". Released as written it
    # would break most recipients' parsers (it did ours); changed, it would not be "kept".
    engine = make_engine({"fields": {"m": "keep", "k": "keep", "deep.m": "keep"}})
    payload = b'{"m": 1e999, "k": -1E+400, "deep": {"m": 5}, "x": 1}'
    (decision,) = engine.evaluate(Message(TOPIC, payload, NOW), NOW)
    assert decision.outcome is Outcome.SHARED
    assert decision.payload == b'{"deep":{"m":5}}'
    assert decision.withheld == ("m", "k", "x")
    assert [r.code for r in decision.field_reasons.values()] == ["out_of_range"] * 2
    assert "“m” holds a number beyond what computers can represent" in engine.explain(
        decision, "en"
    )
    assert "„k“ enthält eine Zahl jenseits" in engine.explain(decision, "de")
    (alone,) = engine.evaluate(Message(TOPIC, b'{"m": 1e999}', NOW), NOW)
    assert alone.outcome is Outcome.WITHHELD and alone.reason is not None
    assert alone.reason.code == "out_of_range"
    # Inside a kept object: the whole release is withheld, saying why.
    (inside,) = engine.evaluate(Message(TOPIC, b'{"deep": {"m": [1, 1e999]}}', NOW), NOW)
    assert inside.outcome is Outcome.WITHHELD and inside.reason is not None
    assert inside.reason.code == "out_of_range" and inside.payload is None


def test_long_integer_ids_get_distinct_pseudonyms() -> None:
    key = b"k" * 32
    first, second = loads_exact("[123456789012345678901234567890, 123456789012345678901234567891]")
    assert isinstance(first, Literal) and float(first) == float(second)
    assert pseudonymise(first, key) != pseudonymise(second, key)
    # Numbers that were exact before keep their pseudonyms: 4711 and 23.20 as before.
    assert pseudonymise(loads_exact("23.20"), key) == pseudonymise(23.2, key)
    assert pseudonymise(loads_exact("4711"), key) == pseudonymise("4711", key)
    engine = make_engine({"fields": {"badge": "pseudonymise"}})
    outs = set()
    for badge in (b"123456789012345678901234567890", b"123456789012345678901234567891"):
        (decision,) = engine.evaluate(Message(TOPIC, b'{"badge": %s}' % badge, NOW), NOW)
        outs.add(orjson.loads(decision.payload)["badge"])
    assert len(outs) == 2


def test_an_aggregate_past_a_doubles_range_is_withheld_not_written_as_null() -> None:
    fields = {"p": ["sum"], "q": ["mean"]}
    engine = make_engine({"aggregate": {"window": "5m", "fields": fields, "min_count": 2}})
    start = NOW.replace(minute=0)
    for index in range(2):  # 1e308 + 1e308 is inf; orjson writes inf as null
        body = b'{"p": 1e308, "q": %d}' % index
        engine.evaluate(Message(TOPIC, body, start), start + timedelta(seconds=index))
    (closed,) = engine.flush(start + timedelta(minutes=6))
    assert closed.outcome is Outcome.ALTERED and closed.payload is not None
    assert "p" not in orjson.loads(closed.payload)
    assert orjson.loads(closed.payload)["q"] == {"mean": 0.5}
    assert closed.field_reasons["p"].code == "out_of_range" and closed.withheld == ("p",)
    assert "“p” holds a number beyond" in engine.explain(closed, "en")


KEEP_A = make_engine({"fields": {"a": "keep"}})  # no rate limit: it keeps no state between tests
literals = st.builds(
    lambda sign, whole, fraction, exponent: (sign + whole + fraction + exponent).encode(),
    st.sampled_from(["", "-"]),
    st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,24}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"\.[0-9]{1,20}", fullmatch=True)),
    st.one_of(st.just(""), st.from_regex(r"[eE][+-]?[0-9]{1,3}", fullmatch=True)),
)


@settings(max_examples=3000)
@given(literals)
def test_the_fast_path_is_taken_only_for_numbers_that_write_back_unchanged(literal: bytes) -> None:
    body = b'{"a": [' + literal + b"]}"
    if round_trips(body):
        assert orjson.dumps(orjson.loads(body)) == b'{"a":[' + literal + b"]}"
    # Either way, what is released is what arrived.
    (decision,) = KEEP_A.evaluate(Message(TOPIC, body, NOW), NOW)
    if decision.payload is not None:
        assert decision.payload == b'{"a":[' + literal + b"]}"
    else:
        # Beyond a double (1E400): withheld, saying so.
        assert decision.reason is not None and decision.reason.code == "out_of_range"


@settings(max_examples=3000)
@given(literals)
def test_a_compact_body_leaves_as_written_whatever_its_numbers(literal: bytes) -> None:
    # Compact bodies take the other shortcut (``Parsed.exact``: orjson writes them back byte for
    # byte); what leaves is still what arrived, for every literal.
    body = b'{"a":[' + literal + b'],"b":"x"}'
    (decision,) = KEEP_A.evaluate(Message(TOPIC, body, NOW), NOW)
    if decision.payload is not None:
        assert decision.payload == b'{"a":[' + literal + b"]}"
    else:
        assert decision.reason is not None and decision.reason.code == "out_of_range"


@settings(max_examples=2000)
@given(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from(["", '"s":"1234567890123456789",', '"y":-1,']),
)
def test_an_integer_takes_the_fast_path_exactly_when_orjson_writes_it_back(
    number: int, before: str
) -> None:
    # Nanosecond time stamps (19 digits) are common in telemetry: they fit in 64 bits, orjson
    # writes them back unchanged, so they need no literal-keeping parse; beyond 64 bits they do.
    body = f'{{{before}"a":{number},"b":[{number}]}}'.encode()
    writes_back = orjson.dumps(orjson.loads(body)) == body
    assert round_trips(body) == writes_back
    assert writes_back == (-(2**63) <= number < 2**64)


def test_a_nanosecond_time_stamp_leaves_as_written_without_the_exact_parse() -> None:
    body = b'{"a":1764806400000000000,"b":"-9223372036854775808"}'
    assert round_trips(body)
    assert not round_trips(b'{"a":1764806400000000000,"b":23.20}')
    (decision,) = KEEP_A.evaluate(Message(TOPIC, body, NOW), NOW)
    assert decision.payload == b'{"a":1764806400000000000}'
