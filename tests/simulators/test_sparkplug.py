"""The simulated Sparkplug B oven (simulators/sparkplug.py): an NBIRTH, a DBIRTH, then DDATA,
under the specification's topics, with ``seq`` running 0-255 per node across all three; the
JSON rendering and binary protobuf carry the same metrics, binary DATA only by the aliases its
BIRTH defined (readable with the BIRTH, not without); and one seed gives one oven."""

from __future__ import annotations

import orjson

from policies.sparkplug import NO_BIRTH, SparkplugState, parse_topic
from simulators.sparkplug import SparkplugOven

T0 = 1_780_000_000.0


def _oven(*, binary: bool = False, seed: int = 3) -> SparkplugOven:
    return SparkplugOven("Werk Nord", "Linie 1", "Ofen 1", seed, binary=binary)


def test_birth_before_data_under_the_specifications_topics() -> None:
    oven = _oven()
    messages = [oven.next_message(T0 + i) for i in range(5)]
    kinds = []
    for topic, _ in messages:
        parsed = parse_topic(topic)
        assert parsed is not None and (parsed.group, parsed.node) == ("Werk Nord", "Linie 1")
        kinds.append(parsed.kind)
    assert kinds == ["NBIRTH", "DBIRTH", "DDATA", "DDATA", "DDATA"]
    assert parse_topic(messages[1][0]).device == "Ofen 1"  # type: ignore[union-attr]
    assert oven.topic == messages[2][0] and oven.birth_topic == messages[1][0]
    bodies = [orjson.loads(p) for _, p in messages]
    assert [b["seq"] for b in bodies] == [0, 1, 2, 3, 4]
    birth = {m["name"]: m["dataType"] for m in bodies[1]["metrics"]}
    assert birth["Temperature"] == "Float" and birth["Batch"] == "Int32"
    for body in bodies[2:]:
        assert body["metrics"][0]["name"] == "Temperature"
        assert {m["name"] for m in body["metrics"]} <= set(birth)


def test_seq_wraps_at_256() -> None:
    oven = _oven()
    seqs = [orjson.loads(oven.next_message(T0 + i)[1])["seq"] for i in range(260)]
    assert seqs[255:] == [255, 0, 1, 2, 3]


def test_binary_data_is_read_only_with_its_birth() -> None:
    binary, text = _oven(binary=True), _oven(binary=False)
    state, lonely = SparkplugState(), SparkplugState()
    for i in range(6):
        topic, payload = binary.next_message(T0 + i)
        same_topic, rendering = text.next_message(T0 + i)
        assert topic == same_topic and payload[:1] != b"{"
        parsed = parse_topic(topic)
        assert parsed is not None
        decoded = state.decode("werk", parsed, payload)
        expected = {m["name"]: m["value"] for m in orjson.loads(rendering)["metrics"]}
        assert isinstance(decoded, dict) and decoded.keys() == expected.keys()
        if i >= 2:  # DATA without the BIRTH: only aliases, which nobody defined
            assert lonely.decode("werk", parsed, payload) is NO_BIRTH


def test_one_seed_one_oven() -> None:
    def run(seed: int) -> list[tuple[str, bytes]]:
        oven = _oven(seed=seed)
        return [oven.next_message(T0 + i * 30) for i in range(8)]

    assert run(3) == run(3)
    assert run(3) != run(4)
