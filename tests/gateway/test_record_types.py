"""The Art. 30 records' typed documents (gateway/rights/record_types.py) are what
``build_records`` really returns: for a scaffolded box with a customer whose grants include
consent and retention, every document at every depth has each key its type requires and none
the type does not know, with values of the declared kinds."""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

from gateway.commands.rights import load_policies
from gateway.config import load_config
from gateway.operations.scaffold import InitOptions, init_directory
from gateway.rights import record_types
from gateway.rights.records import build_records
from policies.compiler import compile_policy
from policies.loader import load_policy_text
from tests.gateway.test_records import NOW
from tests.gateway.test_report import POLICY as MUELLER


def _problems(value: Any, kind: Any, where: str) -> list[str]:
    """Where ``value`` does not have the shape ``kind`` declares (nested TypedDicts, lists,
    optional values, plain dicts and scalars)."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return []
        found = [_problems(value, o, where) for o in options if o is not type(None)]
        return [] if any(not f for f in found) else found[0]
    if typing.is_typeddict(kind):
        if not isinstance(value, dict):
            return [f"{where}: expected an object, found {value!r}"]
        hints = typing.get_type_hints(kind)
        required = set(hints) if kind.__total__ else set()
        out = [f"{where}: missing {k!r}" for k in sorted(required - set(value))]
        out += [f"{where}: unknown {k!r}" for k in sorted(set(value) - set(hints))]
        for key in set(value) & set(hints):
            out += _problems(value[key], hints[key], f"{where}.{key}")
        return out
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: expected a list, found {value!r}"]
        (item,) = typing.get_args(kind)
        return [p for i, v in enumerate(value) for p in _problems(v, item, f"{where}[{i}]")]
    if origin is dict:
        return [] if isinstance(value, dict) else [f"{where}: expected an object"]
    return [] if isinstance(value, kind) else [f"{where}: expected {kind}, found {value!r}"]


def test_the_records_have_their_typed_shape_at_every_depth(tmp_path: Path) -> None:
    config = load_config(init_directory(InitOptions(directory=tmp_path / "edge")))
    text = MUELLER.replace("grants:\n", "retention:\n  content_days: 30\ngrants:\n", 1)
    policies = load_policies(config)
    policies.append(compile_policy(load_policy_text(text), config.recipient_names()))
    records = build_records(config, policies, now=NOW)
    assert _problems(records, record_types.Records, "records") == []
    consents = [a["consent"] for a in records["activities"] if a["consent"] is not None]
    assert consents and len(records["activities"]) >= 3  # the checker saw nested documents
    # and it does find a wrong shape
    broken: Any = dict(records)
    broken["activities"] = [{**records["activities"][0], "grant": 7, "surprise": 1}]
    assert sorted(_problems(broken, record_types.Records, "records")) == [
        "records.activities[0].grant: expected <class 'str'>, found 7",
        "records.activities[0]: unknown 'surprise'",
    ]
