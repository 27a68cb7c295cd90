"""Sparkplug B through the real gateway: binary protobuf from a simulated edge node, BIRTH then
DATA decoded per metric, DATA before BIRTH withheld with the reason no_birth."""

from __future__ import annotations

from pathlib import Path

from policies.sparkplug import encode
from simulators.sparkplug import SparkplugOven
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import _reasons

FACTORY = (
    Path(__file__).resolve().parents[2] / "policies" / "examples" / "sparkplug" / "factory.yaml"
).read_text(encoding="utf-8")
CUSTOMER = "grossbaeckerei-nord"


async def test_birth_then_data_gives_per_metric_decisions(tmp_path: Path) -> None:
    devices = [(CUSTOMER, "line-1", "Linie 1"), (CUSTOMER, "line-1-oven-1", "Ofen 1")]
    async with running_gateway(tmp_path, {"factory.yaml": FACTORY}, devices) as h:
        node = await h.device(CUSTOMER, "line-1")
        oven_link = await h.device(CUSTOMER, "line-1-oven-1")
        oven = SparkplugOven("Werk Nord", "Linie 1", "Ofen 1", seed=5, binary=True)
        # DATA before any BIRTH: the gateway cannot read it, so nothing leaves
        early = encode([(None, 1, "Float", 20.0)], timestamp=1, seq=0)
        await oven_link.publish(oven.topic, early, 1)
        await h.wait_committed(1)
        for i in range(5):  # NBIRTH, DBIRTH, then three DDATA with aliases only
            topic, payload = oven.next_message(1_780_000_000 + 10 * i)
            link = node if "/NBIRTH/" in topic else oven_link
            await link.publish(topic, payload, 1)
        await h.wait_committed(6)
        await h.cloud.wait_for(4)  # DBIRTH and three DDATA
        # The fence: one more DDATA, sent last. The recipient gets its outbox in order, so had
        # the early DATA (or anything else) been forwarded, it would have arrived before it.
        topic, payload = oven.next_message(1_780_000_000 + 10 * 5)
        await oven_link.publish(topic, payload, 1)
        await h.cloud.wait_for(5)
        bodies = h.cloud.payloads(f"ovens/{CUSTOMER}/line-1-oven-1/sparkplug")
        assert len(bodies) == 5  # DBIRTH, three DDATA and the fence: nothing else
        assert len(h.cloud.received) == 5
        for body in bodies:
            assert set(body) <= {
                "Temperature",
                "Setpoint",
                "Heater",
                "Door Open",
                "Properties/Hardware Make",
            }
            assert "Batch" not in body  # never granted: stays in the factory
            temperature = body["Temperature"]
            assert isinstance(temperature, float) and (temperature * 2).is_integer()  # round 0.5
        assert set(bodies[0]) >= {"Temperature", "Setpoint", "Heater", "Door Open"}  # the DBIRTH
        await node.close()
        await oven_link.close()
        reasons = await _reasons(h.gateway.config.database_path)
    assert (CUSTOMER, "line-1-oven-1", "no_birth") in reasons
    assert (CUSTOMER, "line-1", "no_grant") in reasons  # the node's NBIRTH has no grant
