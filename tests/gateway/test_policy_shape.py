"""Whose topics a policy file declares (gateway/messages/policy_shape.py): read from a file that
does not load, as far as it can be read, and matched against a message's topic."""

from __future__ import annotations

from pathlib import Path

from gateway.messages.policy_shape import Shape, read_refusal, read_shape, valid_pattern


def test_what_can_be_read_of_a_broken_file_is_its_customer_and_topics(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(
        "customer: mueller-soehne\n"
        "legal_basis: because\n"  # what breaks it; the rest is still readable
        "devices:\n"
        "  - id: meter-1\n"
        "    topics:\n"
        "      - pattern: meters/meter-1\n"
        "      - pattern: meters/meter-1/{stream}\n"
        "        stream: events\n"
        "  - name: no id\n"
        "    topics: [{pattern: other/x}]\n",
        encoding="utf-8",
    )
    shape = read_shape(path)
    assert shape is not None and not shape.loaded  # read, not run: no check passed yet
    assert shape.customer == "mueller-soehne"
    assert shape.topics == (
        ("meters/meter-1", "meter-1", "telemetry"),  # the model's default stream
        ("meters/meter-1/{stream}", "meter-1", "events"),
    )
    assert shape.match("meters/meter-1") == ("meter-1", "telemetry")
    assert shape.match("meters/meter-1/x", frozenset({"meters/meter-1"})) is None
    path.write_text("customer: [unclosed", encoding="utf-8")
    assert read_shape(path) is None
    assert read_shape(tmp_path / "missing.yaml") is None


def test_a_pattern_too_broken_to_compile_attributes_nothing() -> None:
    shape = Shape.of("c", [("a/{x}/{x}", "d", "s"), ("a/b", "d", "s")])  # a capture twice
    assert shape.topics == (("a/b", "d", "s"),)
    assert shape.saved().topics == [("a/b", "d", "s")]


def test_a_read_pattern_is_refused_for_what_makes_it_unsafe_and_said_why() -> None:
    others = [("bakery", "ovens/+/state", "bakery.yaml")]
    assert read_refusal("mueller", "meter-1", "meters/meter-1", others) is None
    assert valid_pattern("meters/meter-1") and not valid_pattern("meters/#/x")
    invalid = read_refusal("mueller", "meter-1", "meters/#/x", others)
    assert invalid is not None and "not a valid topic pattern" in invalid
    wild = read_refusal("mueller", "meter-1", "{site}/meter", others)
    assert wild is not None and "first level '{site}' is a wildcard" in wild
    taken = read_refusal("mueller", "meter-1", "ovens/1/state", others)
    assert taken == "it overlaps 'ovens/+/state' of customer 'bakery' (bakery.yaml)"
