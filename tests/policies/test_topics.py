"""Topic patterns, overlaps and templates."""

from __future__ import annotations

import pytest

from policies.topics import TopicPattern, TopicTemplate, patterns_overlap


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
