"""A simulated Sparkplug B edge node with one machine: an industrial oven.

By default payloads are the Sparkplug specification's JSON rendering of the protobuf message
(timestamp, metrics with name/timestamp/dataType/value, seq), which is what ``shared/payloads``
holds. With ``binary=True`` they are what real edge nodes send: binary protobuf
(``policies/sparkplug_b.proto``), where the BIRTH gives every metric a numeric alias and DATA
messages carry only aliases and values, so they can be read only with the BIRTH.

The first message is the node's NBIRTH, the second the device's DBIRTH, then DDATA; ``seq`` runs
0-255 per edge node across all three, as the specification requires.
"""

from __future__ import annotations

from policies.sparkplug import encode
from simulators.behaviour import oven_temperature
from simulators.devices import DeviceBase
from simulators.wire import JsonValue, dumps

__all__ = ["SparkplugOven"]


def _metric(name: str, ts: int, data_type: str, value: JsonValue) -> dict[str, JsonValue]:
    return {"name": name, "timestamp": ts, "dataType": data_type, "value": value}


class SparkplugOven(DeviceBase):
    def __init__(
        self, group: str, node: str, device: str, seed: int, *, binary: bool = False
    ) -> None:
        super().__init__(f"{group}/{node}/{device}", f"spBv1.0/{group}/DDATA/{node}/{device}", seed)
        self._group = group
        self._node = node
        self._device = device
        self._phase_s = self._rng.uniform(0, 5400)
        self._bd_seq = self._rng.randrange(0, 256)
        self._batch = self._rng.randrange(1, 500)
        self._heater: bool | None = None
        self.binary = binary
        self._aliases: dict[str, int] = {}

    @property
    def node_topic(self) -> str:
        return f"spBv1.0/{self._group}/NBIRTH/{self._node}"

    @property
    def birth_topic(self) -> str:
        return f"spBv1.0/{self._group}/DBIRTH/{self._node}/{self._device}"

    def next_message(self, t: float) -> tuple[str, bytes]:
        n, elapsed = self._tick(t)
        ts = int(t * 1000)
        temp, heater = oven_temperature(self._phase_s + elapsed)
        temperature = round(temp + self._rng.gauss(0, 0.2), 2)
        if n == 0:
            metrics = [
                _metric("bdSeq", ts, "UInt64", self._bd_seq),
                _metric("Node Control/Rebirth", ts, "Boolean", False),
                _metric("Properties/Hardware Make", ts, "String", "Einblick Simulator"),
            ]
            topic = self.node_topic
        elif n == 1:
            metrics = [
                _metric("Temperature", ts, "Float", temperature),
                _metric("Setpoint", ts, "Float", 180.0),
                _metric("Heater", ts, "Boolean", heater),
                _metric("Door Open", ts, "Boolean", False),
                _metric("Batch", ts, "Int32", self._batch),
                _metric("Properties/Hardware Make", ts, "String", "Einblick Simulator"),
            ]
            topic = self.birth_topic
        else:
            metrics = [_metric("Temperature", ts, "Float", temperature)]
            if heater != self._heater:
                metrics.append(_metric("Heater", ts, "Boolean", heater))
            if temp < 40 and self._rng.random() < 0.2:
                self._batch += 1
                metrics.append(_metric("Batch", ts, "Int32", self._batch))
            topic = self.topic
        self._heater = heater
        if self.binary:
            return topic, self._encode(n, ts, metrics)
        payload: dict[str, JsonValue] = {"timestamp": ts, "metrics": metrics, "seq": n % 256}
        return topic, dumps(payload)

    def _encode(self, n: int, ts: int, metrics: list[dict[str, JsonValue]]) -> bytes:
        """Protobuf: BIRTHs name each metric and give it an alias; DATA sends the alias only."""
        rows: list[tuple[str | None, int | None, str, JsonValue]] = []
        for metric in metrics:
            name, data_type = str(metric["name"]), str(metric["dataType"])
            if n <= 1:
                alias = self._aliases.setdefault(name, len(self._aliases) + 1)
                rows.append((name, alias, data_type, metric["value"]))
            else:
                rows.append((None, self._aliases[name], data_type, metric["value"]))
        return encode(rows, timestamp=ts, seq=n % 256)
