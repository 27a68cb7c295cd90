"""Hostile input as properties (Hypothesis) and the atheris targets run for real, briefly.

The long runs (100,000 inputs per target) are commands, not CI steps:

    python -m tests.fuzz.payload -atheris_runs=100000
    python -m tests.fuzz.document -atheris_runs=100000
    python -m tests.fuzz.policy -atheris_runs=100000
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from policies.errors import PolicyError
from policies.examples import EXAMPLES, example_path
from policies.loader import load_policy_text
from tests.fuzz import document, payload, policy
from tests.fuzz.checks import (
    SECRET,
    TOPICS,
    Leak,
    check_message,
    check_policy_text,
    example_engine,
)
from tests.fuzz.documents import Source, build_document

ROOT = Path(__file__).resolve().parents[2]
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

topics = st.sampled_from(TOPICS)


@FAST
@given(topic=topics, body=st.binary(max_size=2048))
def test_any_bytes_on_any_topic_are_decided_without_a_crash_or_a_leak(
    topic: str, body: bytes
) -> None:
    check_message(example_engine(), topic, body)


@FAST
@given(data=st.data(), topic=topics)
def test_adversarial_documents_never_let_a_planted_secret_out(
    data: st.DataObject, topic: str
) -> None:
    source = Source(
        lambda low, high: data.draw(st.integers(low, high)),
        lambda size: data.draw(st.text(max_size=size)),
    )
    check_message(example_engine(), topic, build_document(source), planted=True)


@FAST
@given(
    topic=st.lists(
        st.sampled_from(["..", ".", "+", "#", "", "bakery", "oven-1", "telemetry", "ä", "\0"])
        | st.text(max_size=8),
        min_size=1,
        max_size=6,
    ).map("/".join)
)
def test_topic_names_with_wildcards_dots_and_junk_are_decided(topic: str) -> None:
    body = b'{"temperature": 180.2, "operator": "' + SECRET.encode() + b'"}'
    check_message(example_engine(), topic, body, planted=True)


@FAST
@given(
    name=st.sampled_from(EXAMPLES),
    at=st.integers(0, 10_000),
    insert=st.text(max_size=60),
)
def test_policy_text_with_anything_inserted_loads_or_fails_with_a_policy_error(
    name: str, at: int, insert: str
) -> None:
    text = example_path(name).read_text(encoding="utf-8")
    at %= len(text) + 1
    check_policy_text(text[:at] + insert + text[at:])


@pytest.mark.parametrize(
    "text",
    [
        "a: &x [1, 2]\nb: [*x, *x, *x]\n",  # aliases (billion laughs) are refused
        "[" * 10_000 + "]" * 10_000,  # nesting beyond the limit
        "einblick_policy: 1\n" + "x" * (2 << 20),  # over the size limit
        "einblick_policy: !!python/object/apply:os.system ['true']\n",  # no arbitrary tags
        "einblick_policy: 1\ncustomer: \ud800\n",  # a lone surrogate
        "\0\0\0",
        "",
    ],
    ids=["aliases", "deep", "huge", "python-tag", "surrogate", "nul", "empty"],
)
def test_hostile_policy_files_are_refused_with_a_policy_error(text: str) -> None:
    with pytest.raises(PolicyError):
        load_policy_text(text, "hostile.yaml")
    assert check_policy_text(text) is False


@pytest.mark.parametrize(
    "body",
    [
        b'{"temperature": 1e999, "setpoint": NaN, "operator": "x"}',
        b'{"temperature": 123456789012345678901234567890, "serial": 1e400}',
        b'{"temperature": 1, "temperature": "' + SECRET.encode() + b'x"}',
        b"[" * 200_000,
        b'{"ts": "' + b"9" * 10_000 + b'"}',
        b'{"errors": [' + b'{"code": 1, "operator": "x"},' * 10_000 + b"{}]}",
        b'{"serial": "' + b"s" * (10 * 1024 * 1024) + b'"}',
        b'{"temperature": "\xff\xfe"}',
        b'{"serial": "\\ud800"}',
    ],
    ids=[
        "nan",
        "huge-numbers",
        "duplicate-keys",
        "deep",
        "long-time",
        "many",
        "10mb",
        "utf8",
        "surrogate",
    ],
)
def test_hostile_bodies_on_the_oven_topic(body: bytes) -> None:
    check_message(example_engine(), "bakery/oven-1/telemetry", body)


def test_the_leak_check_itself_catches_a_leak() -> None:
    """A check that cannot fail proves nothing: hand it a decision that leaks."""
    from dataclasses import replace

    from policies.message import Message
    from tests.fuzz.checks import NOW, check_decision

    engine = example_engine()
    body = b'{"temperature": 180.2, "operator": "' + SECRET.encode() + b'"}'
    (decision,) = engine.evaluate(Message("bakery/oven-1/telemetry", body, NOW), NOW)
    check_decision(decision, planted=True)
    leaky = replace(decision, payload=body)
    with pytest.raises(Leak):
        check_decision(leaky, planted=True)


@pytest.mark.parametrize("target", [payload, document, policy])
def test_each_target_replays_random_inputs(target: object) -> None:
    import random

    one_input = target.one_input
    rng = random.Random(9)
    for _ in range(200):
        one_input(rng.randbytes(rng.randrange(0, 300)))


@pytest.mark.parametrize("name", ["payload", "document", "policy"])
def test_each_atheris_target_runs(name: str) -> None:
    """The real fuzzer, a few hundred inputs per target: the commands above keep working."""
    done = subprocess.run(
        [sys.executable, "-m", f"tests.fuzz.{name}", "-atheris_runs=300", "-seed=1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"fuzz target {name}: " in done.stderr, done.stderr[-2000:]
