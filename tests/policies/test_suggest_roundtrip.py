"""``policy suggest`` is paste-ready for every profile: its output, pasted under a grant for a
device on the profile's own topic pattern, passes ``policy check`` and, on the profile's real
sample messages (tests/data/payloads), releases exactly the fields it lists and nothing else."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from policies.compiler import compile_policy
from policies.engine import Engine
from policies.listing import leaves
from policies.loader import load_policy
from policies.message import Message
from policies.paths import specificity
from policies.profiles import PROFILES, profile
from tests.data import FAMILIES, family

from .conftest import NOW, Keys
from .test_cli import run

# A Sparkplug DATA message is readable only after the BIRTHs of its node and device.
_BIRTHS = {
    "sparkplug_b": [
        (
            "spBv1.0/Sparkplug B Devices/NBIRTH/Raspberry Pi",
            b'{"metrics":[{"name":"bdSeq","value":0}]}',
        )
    ]
}
_INDEX = re.compile(r"\[\d+\]")


def _names(pattern: str, leaf: str) -> bool:
    p = [s.split("[", 1)[0] for s in pattern.split(".")]
    lf = [s.split("[", 1)[0] for s in _INDEX.sub("", leaf).split(".")]
    return len(p) <= len(lf) and all(a in ("*", b) for a, b in zip(p, lf, strict=False))


def _policy(name: str, patterns: list[str], fields: dict[str, Any]) -> str:
    doc = {
        "einblick_policy": 1,
        "customer": "acme",
        "name": "Acme",
        "language": "en",
        "devices": [
            {
                "id": "dev",
                "name": "Device",
                "kind": "sensor",
                "profile": name,
                "topics": [{"pattern": p, "stream": "s"} for p in dict.fromkeys(patterns)],
            }
        ],
        "grants": [
            {
                "id": "suggested",
                "recipient": "logistics",
                "purpose": "Service",
                "legal_basis": "contract",
                "devices": ["dev"],
                "fields": fields,
            }
        ],
    }
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


def test_every_profile_has_samples() -> None:
    assert sorted(PROFILES) == sorted(FAMILIES)


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_suggest_check_explain_on_the_profiles_sample(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["policy", "suggest", "--profile", name, "--lang", "en"]) == 0
    fields = yaml.safe_load(capsys.readouterr().out)["fields"] or {}
    samples = family(name)
    p = profile(name)
    matched = [(s, p.match(s.topic)) for s in samples]
    patterns: list[str] = []
    for sample, match in matched:
        assert match is not None, f"{name}: sample topic {sample.topic!r} matches no profile topic"
        patterns.append(match.pattern)
    for topic, _ in _BIRTHS.get(name, []):
        found = p.match(topic)
        assert found is not None
        patterns.append(found.pattern)
    # The device declared on the profile's own topic patterns, as an installer would copy them.
    path = tmp_path / f"{name}.yaml"
    path.write_text(_policy(name, patterns, fields), encoding="utf-8")
    assert run(["policy", "check", str(path)]) == 0, capsys.readouterr().err
    capsys.readouterr()
    policy = compile_policy(load_policy(path), {"logistics": "L"})
    engine = Engine([policy], Keys())
    for topic, body in _BIRTHS.get(name, []):
        engine.evaluate(Message(topic, body, NOW), NOW)
    # A coarsened latitude names its longitude: both halves are the suggestion's.
    for granted, treatment in list(fields.items()):
        if isinstance(treatment, dict) and "coarsen" in treatment:
            head = granted.rpartition(".")[0]
            lon = treatment["coarsen"]["lon"]
            fields[f"{head}.{lon}" if head else lon] = treatment
    released_any = False
    for sample, _ in sorted(matched, key=lambda m: "BIRTH" not in m[0].topic):
        (decision,) = engine.evaluate(Message(sample.topic, sample.payload.encode(), NOW), NOW)
        text = engine.explain(decision, "en")
        assert decision.reason is None or decision.reason.code != "no_birth", text
        if decision.payload is None:
            continue
        released_any = True
        out = orjson.loads(decision.payload)
        for leaf in leaves(out, ""):
            naming = [f for f in fields if _names(f, leaf)]
            assert naming, f"{name}: {leaf!r} left though the suggestion does not list it"
            assert fields[max(naming, key=specificity)] != "withhold"
        for path_ in [*decision.shared, *(a.path for a in decision.altered)]:
            assert _INDEX.sub("[]", path_) in text or path_.startswith("$"), (path_, text)
    assert released_any, f"{name}: the suggested grant released nothing from the samples"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_topic_level_lines_are_yaml_once_uncommented(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["policy", "suggest", "--profile", name, "--lang", "de"]) == 0
    out = capsys.readouterr().out.splitlines()
    if "# topic_levels:" not in out:
        return
    start = out.index("# topic_levels:") + 1
    block = []
    for line in out[start:]:
        if not line.startswith("#   "):
            break
        if not line.startswith("#   #"):
            block.append(line[1:].split(" #", 1)[0])
    levels = yaml.safe_load("\n".join(block)) or {}
    assert isinstance(levels, dict), block
    assert set(levels.values()) <= {"keep", "pseudonymise"}, levels


def test_ttn_suggestion_keeps_gateway_identity_and_exact_times_here(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["policy", "suggest", "--profile", "ttn_v3", "--lang", "en"]) == 0
    fields = yaml.safe_load(capsys.readouterr().out)["fields"]
    sample = family("ttn_v3")[0]
    match = profile("ttn_v3").match(sample.topic)
    assert match is not None
    path = tmp_path / "ttn.yaml"
    path.write_text(_policy("ttn_v3", [match.pattern], fields), encoding="utf-8")
    engine = Engine([compile_policy(load_policy(path), {"logistics": "L"})], Keys())
    (decision,) = engine.evaluate(Message(sample.topic, sample.payload.encode(), NOW), NOW)
    assert decision.payload is not None
    body = decision.payload.decode()
    # the receiving gateway's id and EUI (fixed, mapped: they locate the device)
    assert "gtw1" not in body and "9C5C8E00001A05C4" not in body
    # ULIDs in correlation ids, the radio block's receive time and microsecond counter
    assert "01E0WZGT6Y7657CPFPE5WEYDSQ" not in body
    assert "15:15:45.787" not in body and "2463457000" not in body
    out = orjson.loads(body)
    assert out["uplink_message"]["decoded_payload"] == {"temperature": 1.0, "luminosity": 0.64}
    assert out["uplink_message"]["settings"]["frequency"] == "868300000"
