"""The example policies load, compile, lint clean and do not overlap."""

from __future__ import annotations

from policies.compiler import CompiledPolicy
from policies.engine import Engine
from policies.lint import lint


def test_examples_compile_without_warnings(examples: list[CompiledPolicy]) -> None:
    assert [p.customer for p in examples] == [
        "baeckerei-schmidt",
        "spedition-weber",
        "berg-partner",
    ]
    for policy in examples:
        assert lint(policy) == []
        assert len(policy.version) == 64


def test_examples_share_one_engine(engine: Engine) -> None:
    assert engine.device_for("bakery/oven-1/telemetry") is not None
    ref = engine.device_for("owntracks/jjolie/van-01")
    assert ref is not None and ref.captures == {"driver": "jjolie"} and ref.stream == "location"
    assert engine.device_for("zigbee2mqtt/bridge/event") is not None
    assert engine.device_for("tele/berg-meter/LWT") is not None
    assert engine.device_for("tele/other/LWT") is None
