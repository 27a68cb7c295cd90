"""Sparkplug B: decode a message against the BIRTH that defined its metrics.

Sparkplug B payloads are Protocol Buffers (``sparkplug_b.proto`` beside this module; the Python
classes are generated from it). An edge node announces its metrics in NBIRTH, each device behind
it in DBIRTH: names, datatypes and optional numeric aliases. Later NDATA/DDATA may carry only
aliases and values, so they can be read only with the BIRTH that came before. This module keeps
that state per customer, group, edge node and device, and turns a message into the JSON-like
mapping the policy engine walks, keyed by metric name::

    DDATA {metrics: [{alias: 3, float_value: 181.2}]}   ->   {"Temperature": 181.2}

so a policy releases metrics one by one (``fields: {Temperature: {round: 0.5}}``) and the
explanation names them. A DATA message before its BIRTH, or with an alias the BIRTH did not
define, is withheld with Reason ``no_birth``. NDEATH forgets the node and its devices; DDEATH the
device. The specification's JSON rendering (``{"metrics": [{"name": …, "value": …}]}``, what
``shared/payloads`` and the simulator's JSON mode send) is accepted too.

Pure: no clock, no I/O. Metric names containing ``.`` cannot be addressed by a policy path (the
dot separates levels); data sets, templates and property sets decode to ``None``.
"""

from __future__ import annotations

import base64
import contextlib
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from google.protobuf.message import DecodeError
from pydantic import JsonValue

from policies.decision import Reason
from policies.paths import JsonObject
from policies.sparkplug_b_pb2 import Payload

__all__ = [
    "DATATYPES",
    "PREFIX",
    "Birth",
    "SparkplugState",
    "SparkplugTopic",
    "encode",
    "parse_topic",
]

PREFIX = "spBv1.0/"
NO_BIRTH = Reason("no_birth")
NOT_SPARKPLUG = Reason("not_json")  # neither protobuf nor the JSON rendering

DATATYPES: Mapping[str, int] = {
    "Int8": 1,
    "Int16": 2,
    "Int32": 3,
    "Int64": 4,
    "UInt8": 5,
    "UInt16": 6,
    "UInt32": 7,
    "UInt64": 8,
    "Float": 9,
    "Double": 10,
    "Boolean": 11,
    "String": 12,
    "DateTime": 13,
    "Text": 14,
    "UUID": 15,
    "Bytes": 17,
}
_SIGNED32 = {1: 8, 2: 16, 3: 32}


@dataclass(frozen=True, slots=True)
class SparkplugTopic:
    group: str
    kind: str  # NBIRTH NDATA NDEATH DBIRTH DDATA DDEATH NCMD DCMD
    node: str
    device: str | None

    @property
    def is_birth(self) -> bool:
        return self.kind in ("NBIRTH", "DBIRTH")

    @property
    def is_data(self) -> bool:
        return self.kind in ("NDATA", "DDATA")


def parse_topic(topic: str) -> SparkplugTopic | None:
    """``spBv1.0/<group>/<type>/<node>[/<device>]``; None for anything else (e.g. STATE)."""
    if not topic.startswith(PREFIX):
        return None
    parts = topic[len(PREFIX) :].split("/")
    if len(parts) == 3 and parts[1].startswith("N"):
        return SparkplugTopic(parts[0], parts[1], parts[2], None)
    if len(parts) == 4 and parts[1].startswith("D"):
        return SparkplugTopic(parts[0], parts[1], parts[2], parts[3])
    return None


@dataclass(slots=True)
class Birth:
    """What a BIRTH defined: alias -> name, name -> datatype."""

    names: dict[int, str] = field(default_factory=dict)
    types: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Metric:
    name: str | None
    alias: int | None
    datatype: int | None
    value: JsonValue  # a JSON metric's value, or one of the proto's scalar kinds


_F32 = struct.Struct("<f")


def _float32(value: float) -> float:
    """The shortest decimal that is the same float32 as ``value`` (181.2 for the float32 nearest
    181.2). Fewer digits (a fixed 7) can turn two float32 values into one number: a change."""
    if not math.isfinite(value):
        return value
    bits = _F32.pack(value)
    for digits in range(1, 10):  # 9 significant digits always identify a float32
        shorter = float(f"{value:.{digits}g}")
        with contextlib.suppress(OverflowError):  # rounded up past the largest float32
            if _F32.pack(shorter) == bits:
                return shorter
    return value


def _proto_metrics(raw: bytes) -> list[_Metric] | None:
    payload = Payload()
    try:
        payload.ParseFromString(raw)
    except DecodeError:
        return None
    out = []
    for m in payload.metrics:
        kind = m.WhichOneof("value")
        value: Any = None if kind is None or m.is_null else getattr(m, kind)
        if kind == "float_value" and value is not None:
            value = _float32(value)  # 181.2, not 181.1999969482422
        elif kind == "bytes_value" and value is not None:
            value = base64.b64encode(value).decode("ascii")
        out.append(
            _Metric(
                m.name if m.HasField("name") else None,
                m.alias if m.HasField("alias") else None,
                m.datatype if m.HasField("datatype") else None,
                value,
            )
        )
    return out


def _json_metrics(raw: bytes) -> list[_Metric] | None:
    try:
        root = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if type(root) is not dict or type(root.get("metrics")) is not list:
        return None
    out = []
    for m in root["metrics"]:
        if type(m) is not dict:
            return None
        name, alias, data_type = m.get("name"), m.get("alias"), m.get("dataType")
        out.append(
            _Metric(
                name if isinstance(name, str) else None,
                alias if type(alias) is int else None,
                DATATYPES.get(data_type) if isinstance(data_type, str) else None,
                m.get("value"),
            )
        )
    return out


def _signed(value: JsonValue, datatype: int | None) -> JsonValue:
    """Sparkplug carries Int8/16/32 in uint32 and Int64 in uint64 (two's complement)."""
    if type(value) is not int or datatype is None:
        return value
    bits = _SIGNED32.get(datatype) or (64 if datatype == 4 else 0)
    if bits and value >= 1 << (bits - 1) and value < 1 << (64 if bits == 64 else 32):
        return value - (1 << (64 if bits == 64 else 32))
    return value


class SparkplugState:
    """BIRTH state per (customer, group, node[, device]) and the decoder that uses it."""

    def __init__(self) -> None:
        self._births: dict[tuple[str, str, str, str | None], Birth] = {}

    def decode(self, customer: str, topic: SparkplugTopic, raw: bytes) -> JsonObject | Reason:
        """The message as ``{metric name: value}``, or why it cannot be read."""
        metrics = _json_metrics(raw) if raw[:1] == b"{" else _proto_metrics(raw)
        if metrics is None:
            return NOT_SPARKPLUG
        key = (customer, topic.group, topic.node, topic.device)
        if topic.kind == "NDEATH":
            for known in [k for k in self._births if k[:3] == key[:3]]:
                del self._births[known]
        elif topic.kind == "DDEATH":
            self._births.pop(key, None)
        if topic.is_birth:
            new = Birth()
            for m in metrics:
                if m.name is None:
                    continue
                if m.alias is not None:
                    new.names[m.alias] = m.name
                if m.datatype is not None:
                    new.types[m.name] = m.datatype
            self._births[key] = new
            if topic.kind == "NBIRTH":  # a new node session invalidates its devices' births
                for known in [k for k in self._births if k[:3] == key[:3] and k[3] is not None]:
                    del self._births[known]
        elif topic.is_data:
            found = self._births.get(key)
            if found is None or (
                topic.device is not None
                and (customer, topic.group, topic.node, None) not in self._births
            ):
                return NO_BIRTH
        birth = self._births.get(key)
        out: JsonObject = {}  # what a device sent: checked by the policy that reads it
        for m in metrics:
            name = m.name
            if name is None and m.alias is not None and birth is not None:
                name = birth.names.get(m.alias)
            if name is None:
                return NO_BIRTH  # an alias the BIRTH did not define
            datatype = m.datatype
            if datatype is None and birth is not None:
                datatype = birth.types.get(name)
            out[name] = _signed(m.value, datatype)
        return out

    def known(self) -> int:
        return len(self._births)


def encode(
    metrics: list[tuple[str | None, int | None, str, Any]], *, timestamp: int, seq: int
) -> bytes:
    """A binary Sparkplug B payload: (name, alias, datatype name, value) per metric."""
    payload = Payload(timestamp=timestamp, seq=seq)
    for name, alias, data_type, value in metrics:
        metric = payload.metrics.add()
        if name is not None:
            metric.name = name
        if alias is not None:
            metric.alias = alias
        metric.timestamp = timestamp
        code = DATATYPES[data_type]
        metric.datatype = code
        if value is None:
            metric.is_null = True
        elif code == 11:
            metric.boolean_value = bool(value)
        elif code in (9,):
            metric.float_value = float(value)
        elif code == 10:
            metric.double_value = float(value)
        elif code in (12, 14, 15):
            metric.string_value = str(value)
        elif code in (4, 8, 13):
            metric.long_value = int(value) & ((1 << 64) - 1)
        elif code == 17:
            metric.bytes_value = bytes(value)
        else:
            metric.int_value = int(value) & ((1 << 32) - 1)
    return payload.SerializeToString()
