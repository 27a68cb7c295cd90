"""Shared fixtures for the policy tests: example policies, a fixed key store, payload corpus."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from policies.compiler import CompiledPolicy, compile_policy
from policies.engine import Engine
from policies.examples import EXAMPLES, RECIPIENTS, example_path
from policies.loader import load_policy, load_policy_text
from tests.data import PAYLOADS  # the corpus in the repository, wherever it is checked out

NOW = datetime(2026, 6, 3, 9, 30, tzinfo=UTC)  # a Wednesday, 11:30 in Berlin


class Keys:
    """Per customer+recipient keys; ``erase`` forgets one, as the gateway's key store does."""

    def __init__(self) -> None:
        self.erased: set[tuple[str, str]] = set()

    def key(self, customer: str, recipient: str) -> bytes | None:
        if (customer, recipient) in self.erased:
            return None
        return f"{customer}:{recipient}".encode().ljust(32, b"k")


def corpus() -> Iterator[dict[str, Any]]:
    for path in sorted(PAYLOADS.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                entry["family"] = path.stem
                yield entry


def compile_text(text: str, recipients: dict[str, str] | None = None) -> CompiledPolicy:
    return compile_policy(load_policy_text(text), recipients or {"r1": "R1", "r2": "R2"})


@pytest.fixture
def examples() -> list[CompiledPolicy]:
    return [compile_policy(load_policy(example_path(n)), RECIPIENTS) for n in EXAMPLES]


@pytest.fixture
def keys() -> Keys:
    return Keys()


@pytest.fixture
def engine(examples: list[CompiledPolicy], keys: Keys) -> Engine:
    return Engine(examples, keys)


def policy_dict(*grants: dict[str, Any], **top: Any) -> dict[str, Any]:
    """A small policy: customer acme, device ``dev`` on acme/dev/{user}[/status], recipients
    r1 and r2. Each grant defaults to recipient r1, basis contract, device dev."""
    full = []
    for index, grant in enumerate(grants):
        full.append(
            {
                "id": f"g{index + 1}",
                "recipient": "r1",
                "purpose": {"de": "Wartung", "en": "Maintenance"},
                "legal_basis": "contract",
                "devices": ["dev"],
                **grant,
            }
        )
    doc: dict[str, Any] = {
        "einblick_policy": 1,
        "customer": "acme",
        "name": "Acme",
        "language": "en",
        "devices": [
            {
                "id": "dev",
                "name": "Device",
                "kind": "sensor",
                "topics": [
                    {"pattern": "acme/dev/{user}", "stream": "telemetry"},
                    {"pattern": "acme/dev/{user}/status", "stream": "status"},
                ],
            }
        ],
        "grants": full,
    }
    doc.update(top)
    return doc


def make_engine(*grants: dict[str, Any], keys: Keys | None = None, **top: Any) -> Engine:
    import yaml

    text = yaml.safe_dump(policy_dict(*grants, **top), allow_unicode=True, sort_keys=False)
    return Engine([compile_text(text)], keys or Keys())
