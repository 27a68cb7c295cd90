"""Data the tests need, kept in the repository so a fresh clone tests exactly what CI tests.

``payloads/`` holds real messages of ten device families (see ``payloads/README.md``), copied from
the projects' own documentation and fixtures. Tests read them through :func:`corpus` only, which
fails loudly when a family is missing or empty: a parametrised test must never quietly collect
nothing because its data went astray.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PAYLOADS = Path(__file__).resolve().parent / "payloads"

# The families the corpus must hold; one file each. A new family is added here and as a file.
FAMILIES = (
    "ble_presence",
    "ev_charger",
    "homeassistant",
    "owntracks",
    "shelly_gen2",
    "smart_meter",
    "sparkplug_b",
    "tasmota",
    "ttn_v3",
    "zigbee2mqtt",
)


class CorpusMissing(RuntimeError):
    """The payload corpus is not where the tests expect it: collection must stop, not shrink."""


@dataclass(frozen=True)
class Sample:
    family: str
    line: int  # 1-based line number in payloads/<family>.jsonl
    topic: str
    payload: str  # the body exactly as the device sent it
    personal_fields: tuple[str, ...]
    raw: dict[str, Any]


def family(name: str) -> list[Sample]:
    path = PAYLOADS / f"{name}.jsonl"
    if not path.is_file():
        raise CorpusMissing(f"{path} is missing: the payload corpus must be in the repository")
    samples = [
        Sample(
            family=name,
            line=n,
            topic=d["topic"],
            payload=d["payload"],
            personal_fields=tuple(d["personal_fields"]),
            raw=d,
        )
        for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if text.strip()
        for d in [json.loads(text)]
    ]
    if not samples:
        raise CorpusMissing(f"{path} holds no messages")
    return samples


def corpus() -> list[Sample]:
    """Every sample of every family, in family then line order."""
    found = sorted(p.stem for p in PAYLOADS.glob("*.jsonl"))
    if found != sorted(FAMILIES):
        raise CorpusMissing(
            f"{PAYLOADS} holds families {found}, expected {sorted(FAMILIES)}: "
            "add the file (and the name to FAMILIES) or restore the missing one"
        )
    return [s for name in FAMILIES for s in family(name)]
