"""Topic patterns, overlaps and templates."""

from __future__ import annotations

import itertools
import re

import pytest
from pydantic import ValidationError

from policies.model import TopicSpec
from policies.topics import (
    TopicPattern,
    TopicTemplate,
    claims_overlap,
    namespace_owner,
    pattern_namespace,
    patterns_overlap,
    precedence,
)


@pytest.mark.parametrize(
    ("pattern", "topic", "captures"),
    [
        ("bakery/oven-1/telemetry", "bakery/oven-1/telemetry", {}),
        ("bakery/oven-1/telemetry", "bakery/oven-1/telemetry/x", None),
        (
            "owntracks/{user}/{phone}",
            "owntracks/jjolie/phone",
            {"user": "jjolie", "phone": "phone"},
        ),
        ("owntracks/{user}/{phone}", "owntracks/jjolie/phone/status", None),
        (
            "home/+/BTtoMQTT/{mac}",
            "home/OpenMQTTGateway/BTtoMQTT/45E174126E00",
            {"mac": "45E174126E00"},
        ),
        ("zigbee2mqtt/bridge/#", "zigbee2mqtt/bridge/event", {}),
        ("zigbee2mqtt/bridge/#", "zigbee2mqtt/bridge", {}),
        ("zigbee2mqtt/bridge/#", "zigbee2mqtt/bridged", None),
        ("#", "anything/at/all", {}),
        ("a.b/{x}", "aXb/1", None),  # literal dots are literal
    ],
)
def test_match(pattern: str, topic: str, captures: dict[str, str] | None) -> None:
    assert TopicPattern(pattern).match(topic) == captures


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("a/b", "a/b", True),
        ("a/b", "a/c", False),
        ("a/+", "a/b", True),
        ("a/{x}", "a/b/c", False),
        ("a/#", "a", True),
        ("a/#", "a/b/c", True),
        ("a/#", "b/#", False),
        ("+/b", "a/+", True),
        ("zigbee2mqtt/bridge/#", "zigbee2mqtt/berg-office", False),
        ("owntracks/{d}/van-01", "owntracks/{d}/van-01/event", False),
    ],
)
def test_overlap(a: str, b: str, overlap: bool) -> None:
    assert patterns_overlap(a, b) is overlap
    assert patterns_overlap(b, a) is overlap


def test_template() -> None:
    template = TopicTemplate("ovens/{customer}/{device}/{user}")
    assert template.captures == {"user"}
    assert template.render({"customer": "c", "device": "d", "user": "u"}) == "ovens/c/d/u"
    with pytest.raises(ValueError, match="placeholder"):
        TopicTemplate("ovens/{bad-name}")


# The one dialect: the engine, device profiles, the broker ACL and erasure all read patterns
# through TopicPattern, so these tables are the dialect's definition.
@pytest.mark.parametrize(
    ("pattern", "topic", "captures"),
    [
        ("{x}", "", None),  # a capture is never empty: nothing to name
        ("a/{x}/c", "a//c", None),
        ("a/+/c", "a//c", {}),  # '+' matches an empty level, as in MQTT
        ("v3/{app}@{tenant}/up", "v3/shop@acme/up", {"app": "shop", "tenant": "acme"}),
        ("v3/{app}@{tenant}/up", "v3/a@b@c/up", {"app": "a", "tenant": "b@c"}),
        ("v3/{app}@{tenant}/up", "v3/@acme/up", None),  # captures inside a level are non-empty
        ("v3/{app}@{tenant}/up", "v3/shop/up", None),
        ("openevse-{suffix}/amp", "openevse-7f3a/amp", {"suffix": "7f3a"}),
        ("openevse-{suffix}/amp", "openevse-7f/3a/amp", None),  # never across a '/'
        ("openevse-{suffix}/amp", "openevsE-7f3a/amp", None),
        ("a/#", "a/{x}", {}),  # braces in a topic are plain text
        ("a/b+", "a/b+", {}),  # '+' inside a level is literal
    ],
)
def test_match_dialect(pattern: str, topic: str, captures: dict[str, str] | None) -> None:
    assert TopicPattern(pattern).match(topic) == captures


@pytest.mark.parametrize(
    ("pattern", "mqtt_filter"),
    [
        ("bakery/oven-1/telemetry", "bakery/oven-1/telemetry"),
        ("owntracks/{user}/{phone}", "owntracks/+/+"),
        ("home/+/BTtoMQTT/{mac}", "home/+/BTtoMQTT/+"),
        ("zigbee2mqtt/bridge/#", "zigbee2mqtt/bridge/#"),
        ("#", "#"),
        ("v3/{app}@{tenant}/devices/{dev}/up", "v3/+/devices/+/up"),
        ("openevse-{suffix}/amp", "+/amp"),
    ],
)
def test_to_mqtt_filter(pattern: str, mqtt_filter: str) -> None:
    assert TopicPattern(pattern).to_mqtt_filter() == mqtt_filter


@pytest.mark.parametrize(
    ("pattern", "captures", "by_level"),
    [
        ("a/b", (), ((), ())),
        ("owntracks/{user}/{phone}", ("user", "phone"), ((), ("user",), ("phone",))),
        ("v3/{app}@{tenant}/{dev}", ("app", "tenant", "dev"), ((), ("app", "tenant"), ("dev",))),
    ],
)
def test_captures(
    pattern: str, captures: tuple[str, ...], by_level: tuple[tuple[str, ...]]
) -> None:
    parsed = TopicPattern(pattern)
    assert parsed.captures == captures
    assert tuple(parsed.level_captures(i) for i in range(len(by_level))) == by_level
    assert parsed.level_captures(len(by_level)) == ()
    assert parsed.level_captures(-1) == ()


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ("ttn-{a}/x", "zigbee-{b}/x", False),  # their fixed starts differ: no topic fits both
        ("{a}-in/x", "{b}-out/x", False),  # their fixed ends differ
        ("ttn-{a}/x", "ttn-{b}@{c}/x", True),
        ("a{x}b/q", "ac{y}/q", True),  # "acZb"
        ("openevse-{s}/amp", "openevse/amp", False),  # a literal that does not fit
        ("openevse-{s}/amp", "+/amp", True),
        ("{a}@{t}/up", "{id}/up", True),
    ],
)
def test_mixed_levels_overlap_only_where_their_text_fits(a: str, b: str, overlap: bool) -> None:
    """Before, any level of text and captures counted as a wildcard, so one box refused a
    second device family's file (``ttn-{a}`` beside ``zigbee-{b}``) for a topic no device could
    send on both."""
    assert patterns_overlap(a, b) is overlap
    assert patterns_overlap(b, a) is overlap


@pytest.mark.parametrize(
    ("a", "b"),
    [("openevse-{s}/amp", "openevse-1/amp"), ("v3/{a}@{t}/up", "v3/x@y/up")],
)
def test_mixed_level_overlaps_like_a_wildcard(a: str, b: str) -> None:
    # Conservative: two claims that might share a topic are treated as overlapping.
    assert patterns_overlap(a, b) is True
    assert patterns_overlap(b, a) is True


@pytest.mark.parametrize(
    ("pattern", "error"),
    [
        ("v3/{app}{tenant}/up", "bad capture"),  # no text between: cannot be told apart
        ("openevse-{suffix}+", "bad capture"),
        ("a/{bad-name}", "bad capture"),
        ("a/b+", "wildcards must fill a whole level"),
        ("a/#/b", "'#' may only be the last level"),
        ("a/{x}/{x}", "a capture name is used twice"),
    ],
)
def test_policy_refuses_bad_patterns(pattern: str, error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        TopicSpec(pattern=pattern)


@pytest.mark.parametrize("pattern", ["v3/{app}@{tenant}/devices/{dev}/up", "openevse-{suffix}/x"])
def test_policy_accepts_the_mixed_levels_profiles_use(pattern: str) -> None:
    # The Things Stack writes v3/<app>@<tenant>/…: a device declared on the profile's own
    # pattern must pass policy check (it was refused, so suggest's topic was not paste-ready).
    assert TopicSpec(pattern=pattern).pattern == pattern


@pytest.mark.parametrize(
    ("topic", "owner"),
    [
        ("devices/mueller/meter-2/x", "mueller"),
        ("devices/mueller", "mueller"),
        ("devices/", None),  # no second level: in no customer's namespace
        ("devices", None),
        ("devices2/mueller/x", None),
        ("plant/devices/mueller", None),
    ],
)
def test_namespace_owner(topic: str, owner: str | None) -> None:
    assert namespace_owner(topic) == owner


@pytest.mark.parametrize(
    ("pattern", "owner"),
    [
        ("devices/mueller/meter-2/{stream}", "mueller"),
        ("devices/mueller", "mueller"),
        ("devices/+/meter", None),
        ("devices/{customer}/meter", None),
        ("devices/#", None),
        ("+/mueller/meter", None),
        ("plant/mueller", None),
    ],
)
def test_pattern_namespace(pattern: str, owner: str | None) -> None:
    assert pattern_namespace(pattern) == owner


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        # another customer's first-level wildcard never takes a topic in mueller's namespace
        (("mueller", "devices/mueller/meter-2/{stream}"), ("evil", "+/+/+/x"), False),
        (("evil", "{site}/+/+/#"), ("mueller", "devices/mueller/meter-2/x"), False),
        # the customer's own wildcard competes with its own devices
        (("mueller", "devices/mueller/meter-2/{stream}"), ("mueller", "+/+/+/x"), True),
        # a pattern in a namespace not its customer's (refused when loaded) is not exempt
        (("evil", "devices/mueller/meter-2/x"), ("sued", "+/+/+/x"), True),
        # two first-level wildcards, or fixed first levels: as patterns_overlap says
        (("a", "{id}/events/rpc"), ("b", "+/events/#"), True),
        (("a", "shelly/events/rpc"), ("b", "+/events/#"), True),
        (("a", "shelly/events/rpc"), ("b", "tasmota/#"), False),
    ],
)
def test_claims_overlap(a: tuple[str, str], b: tuple[str, str], overlap: bool) -> None:
    assert claims_overlap(*a, *b) is overlap
    assert claims_overlap(*b, *a) is overlap


@pytest.mark.parametrize(
    ("more", "less"),
    [
        ("werk-b/press-1/telemetry", "{site}/press-1/telemetry"),  # literal before a capture
        ("a/+/x", "+/b/x"),  # the first level where they differ decides
        ("a/b", "a/b/#"),  # the pattern's end before a '#', which also matches a/b
        ("a/+", "a/#"),
        ("openevse-{suffix}/x", "{id}/x"),  # text and a capture before a capture alone
        ("a/b/c", "a/#"),
    ],
)
def test_precedence_ranks_the_more_literal_pattern_first(more: str, less: str) -> None:
    assert precedence(more) > precedence(less)


def test_precedence_ties_plus_and_a_capture() -> None:
    """They match the same topics: a cluster then goes by the customer's name."""
    assert precedence("+/events/rpc") == precedence("{id}/events/rpc")


class _NoExpression:
    def fullmatch(self, _topic: str) -> None:
        raise AssertionError("a level of text and captures went to the regular expression")


@pytest.mark.parametrize(
    "shape",
    ["{a}-{b}", "k/{a}@{b}-x", "p{a}/+/#", "{z}/x{a}-{b}-{c}y/q", "{a}-{b}-{c}-{d}-{e}/#"],
)
def test_mixed_levels_match_as_the_lazy_expression_does_without_it(shape: str) -> None:
    """The linear matcher gives what the expression gives (captures each as short as lets the
    rest match) on topics built level by level from a small alphabet, and never asks the
    expression: a hostile device's topic of dashes against ``{a}-{b}-{c}-{d}-{e}`` made it
    backtrack for seconds."""
    pattern = TopicPattern(shape)
    expression = pattern.regex
    texts = ["".join(p) for n in range(7) for p in itertools.product("a-@xy", repeat=n)]
    choices = []
    for level in shape.split("/"):
        if level == "#":
            choices.append(["", "/a", "/a/-"])
        elif "{" in level or level == "+":
            pieces = re.split(r"\{\w+\}", level)  # the text around the captures
            filled = [
                "".join(p + c for p, c in zip(pieces, (*combo, ""), strict=True))
                for combo in itertools.product(["a", "-", "a-@", "@x-"], repeat=len(pieces) - 1)
            ]
            choices.append([*texts[::29], *filled[::7]])
        else:
            choices.append([level, "a"])
    matched = 0
    for parts in itertools.product(*choices):
        topic = "/".join(p for p in parts if not p.startswith("/")) + "".join(
            p for p in parts if p.startswith("/")
        )
        found = expression.fullmatch(topic)
        want = None if found is None else found.groupdict()
        pattern.regex = _NoExpression()  # type: ignore[assignment]
        try:
            assert pattern.match(topic) == want, topic
        finally:
            pattern.regex = expression
        matched += want is not None
    assert matched > 10  # matches were among them, not only refusals
    pattern.regex = _NoExpression()  # type: ignore[assignment]
    hostile = "/".join("-" * 65_000 if "{" in level else "-" for level in shape.split("/"))
    pattern.match(hostile)  # linear: no expression, no backtracking
