"""Every real device message in tests/data/payloads through a real gateway, under policies that
follow each payload profile's suggested treatments.

For each family (one ``.jsonl`` file, one profile of ``policies.profiles``) the test builds a
policy from the profile alone: one device whose topics are the profile's topic patterns (one
stream each), and per stream a grant that releases the fields ``policy suggest`` proposes for it
(withheld and aggregated fields not listed) and puts the topic levels the profile may release into
the upstream topic (identifying ones pseudonymised). Then every line of the file is published as
its device would, and for each message:

- it has exactly one decision entry in the log;
- every ``personal_fields`` path is absent upstream or altered (never equal to the input), and no
  personal string of it shows up anywhere in the released topic or body;
- no personal topic level of the device's topic appears in the upstream topic;
- fields the profile keeps arrive unchanged, and nothing arrives that the grant does not name.

``EXPECTED`` lists, with the reason, the messages that are meant to be withheld instead.
"""

from __future__ import annotations

import asyncio
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from gateway.log.reader import LogReader
from gateway.log.verify import verify_db
from gateway.operations.scaffold import EXAMPLE_RECIPIENTS
from policies.compiler import CompiledPolicy, compile_policy
from policies.engine import Engine
from policies.errors import PolicyError
from policies.loader import load_policy_text
from policies.profiles import PROFILES, Personal, Treatment, profile
from policies.suggest import suggested_grant
from policies.topics import BUILTIN_PLACEHOLDERS, patterns_overlap
from tests.data import corpus
from tests.gateway.harness import running_gateway

RECIPIENT = "oven-maker"
_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TOPIC_LEVEL = re.compile(r"^\$topic\[(\d+)\]$")
_PSEUDONYM = re.compile(r"^[0-9a-f]{20}$")


@dataclass(frozen=True)
class Line:
    family: str
    number: int
    topic: str
    payload: str
    personal: tuple[str, ...]


@dataclass(frozen=True)
class Withheld:
    """A message that is meant to leave nothing, the reason code the log must give, and why."""

    reason: str
    why: str


# Messages that are withheld on purpose. Every other message must be released (shared/altered).
EXPECTED: dict[tuple[str, int], Withheld] = {
    ("homeassistant", 1): Withheld(
        "not_json",
        "plain-text motion state 'ON': the profile suggests aggregating presence, which a "
        "plain-text body cannot be, so its grant names no $payload and the body is not JSON",
    ),
    ("sparkplug_b", 1): Withheld(
        "no_birth",
        "the spec's JSON rendering (accepted beside protobuf); this DDATA comes before its "
        "DBIRTH in the file, and DATA cannot be read before its BIRTH",
    ),
    # ("sparkplug_b", 2), the DBIRTH, is released: the profile names metrics by name ("*"), as
    # the engine decodes them; its old wire paths (metrics[].value) matched nothing.
}

# Paths the suggested grant releases but the message cannot: withheld, and the explanation
# says which treatment failed.
FIELD_FAILURES: dict[tuple[str, int], dict[str, str]] = {
    # Invalid per the OwnTracks schema (lat missing): the half location is not forwarded.
    ("owntracks", 5): {"lon": "coarsen"},
    # device.identifiers is a list; pseudonymise takes one value, so the list is withheld.
    ("homeassistant", 3): {"device.identifiers": "pseudonymise"},
}


def read_lines() -> dict[str, list[Line]]:
    out: dict[str, list[Line]] = {}
    for s in corpus():
        out.setdefault(s.family, []).append(
            Line(s.family, s.line, s.topic, s.payload, s.personal_fields)
        )
    return out


LINES = read_lines()


# -- policies built from the profiles -------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    name: str
    customer: str
    device: str
    policy: str  # YAML
    streams: dict[str, str]  # profile topic pattern -> stream
    released_levels: dict[str, dict[str, tuple[str, ...]]]  # stream -> capture -> profile levels


def policy_pattern(pattern: str) -> tuple[str, dict[str, tuple[str, ...]]]:
    """A profile pattern as a policy pattern: a capture fills a whole level there, so a level
    like ``{app}@{tenant}`` or ``openevse-{suffix}`` becomes one capture; names the grant's topic
    reserves (``{device}``, ``{topic}``) get a ``_level`` suffix."""
    levels, captures = [], {}
    for level in pattern.split("/"):
        names = tuple(_CAPTURE.findall(level))
        if not names:
            levels.append(level)
            continue
        name = "_".join(names)
        if name in BUILTIN_PLACEHOLDERS:
            name += "_level"
        captures[name] = names
        levels.append(f"{{{name}}}")
    return "/".join(levels), captures


def level_treatment(family: str, names: tuple[str, ...]) -> str | None:
    """keep / pseudonymise for a (merged) topic level from the profile; None: leave it out."""
    p = profile(family)
    found = [p.field(f"$topic.{n}") for n in names]
    if any(f is None for f in found):
        return None
    treatments = {f.treatment for f in found if f is not None}
    if treatments <= {Treatment.KEEP}:
        return "keep"
    if treatments <= {Treatment.KEEP, Treatment.PSEUDONYMISE}:
        return "pseudonymise"
    return None


def build_family(family: str) -> Family:
    p = profile(family)
    customer = "corpus-" + family.replace("_", "-")
    device = family.replace("_", "-")
    kept: list[str] = []
    for pattern in p.topics:  # the profile's order decides, as in Profile.match
        policy_form = policy_pattern(pattern)[0]
        if not any(patterns_overlap(policy_form, policy_pattern(k)[0]) for k in kept):
            kept.append(pattern)
    topics, grants, streams, released = [], [], {}, {}
    for index, pattern in enumerate(kept):
        stream = f"t{index}"
        streams[pattern] = stream
        form, captures = policy_pattern(pattern)
        topics.append({"pattern": form, "stream": stream})
        suggestion = suggested_grant(family, pattern)
        levels = {
            name: how
            for name, names in captures.items()
            if (how := level_treatment(family, names)) is not None
        }
        released[stream] = {name: captures[name] for name in levels}
        grants.append(
            {
                "id": f"corpus-{stream}",
                "recipient": RECIPIENT,
                "purpose": {"de": "Prüfung mit echten Nachrichten", "en": "Real-message check"},
                "legal_basis": "contract",
                "devices": [device],
                "streams": [stream],
                "topic": "corpus/{customer}/{stream}" + "".join(f"/{{{n}}}" for n in levels),
                "topic_levels": levels,
                "fields": suggestion.fields,
            }
        )
    doc = {
        "einblick_policy": 1,
        "customer": customer,
        "name": f"Corpus {p.title['en']}",
        "language": "en",
        "devices": [
            {
                "id": device,
                "name": p.title["en"],
                "kind": "sensor",
                "profile": family,
                "topics": topics,
            }
        ],
        "grants": grants,
    }
    text = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)
    return Family(family, customer, device, text, streams, released)


FAMILIES = {name: build_family(name) for name in sorted(LINES)}


class _NoKeys:
    def key(self, customer: str, recipient: str) -> bytes | None:
        return None


def compiled(family: Family) -> CompiledPolicy:
    return compile_policy(
        load_policy_text(family.policy, f"{family.name}.yaml"), EXAMPLE_RECIPIENTS
    )


def gateway_runs() -> list[list[str]]:
    """Families packed into as few gateways as their topic patterns allow (no overlaps)."""
    runs: list[list[str]] = []
    for name in FAMILIES:
        for run in runs:
            try:
                Engine([compiled(FAMILIES[n]) for n in [*run, name]], _NoKeys())
            except PolicyError:
                continue
            run.append(name)
            break
        else:
            runs.append([name])
    return runs


RUNS = gateway_runs()


def test_the_corpus_covers_every_profile_and_every_line_finds_its_pattern() -> None:
    assert set(LINES) == set(PROFILES)
    for name, lines in LINES.items():
        compiled(FAMILIES[name])  # the built policy loads and compiles
        for line in lines:
            match = profile(name).match(line.topic)
            assert match is not None and match.pattern in FAMILIES[name].streams, line
    for key in [*EXPECTED, *FIELD_FAILURES]:
        assert key[0] in LINES and 1 <= key[1] <= len(LINES[key[0]]), key


# -- paths in JSON values -----------------------------------------------------------------------

_MISSING: Any = object()


def values_at(root: Any, path: str) -> list[Any]:
    """Every value at ``path`` (``a.b``, ``a[].b``) in ``root``; none when it is absent."""
    found = [root]
    for segment in path.split("."):
        name = segment.removesuffix("[]")
        found = [v[name] for v in found if type(v) is dict and name in v]
        if segment.endswith("[]"):
            found = [item for v in found if type(v) is list for item in v]
    return found


def strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings_in(v)]
    return []


def leaf_paths(value: Any, path: str = "") -> list[str]:
    """Leaf paths with arrays as ``[]``: ``a.b``, ``rx[].snr``."""
    if type(value) is dict and value:
        prefix = path + "." if path else ""
        return [p for k, v in value.items() for p in leaf_paths(v, prefix + k)]
    if type(value) is list and value:
        return [p for v in value for p in leaf_paths(v, path + "[]")]
    return [path]


def covered(leaf: str, granted: list[str]) -> bool:
    """True when a granted path names ``leaf`` or a parent of it (``*`` any one key)."""
    levels = re.sub(r"\[\d+\]", "[]", leaf).split(".")
    for g in granted:
        want = g.split(".")
        if len(want) <= len(levels) and all(
            w == lv
            or (w.startswith("*") and lv.endswith(w[1:]))
            or (lv.startswith(w) and lv[len(w) :].strip("[]") == "")
            for w, lv in zip(want, levels, strict=False)
        ):
            return True
    return False


# -- the run ------------------------------------------------------------------------------------


@dataclass
class Outcome:
    line: Line
    outcome: str
    reason: str | None
    withheld: tuple[str, ...]
    explanation: str
    topic: str | None
    body: bytes | None


async def new_decisions(db: Path, after: int, customer: str) -> list[tuple[int, str, Any]]:
    reader = await LogReader.open(db)
    try:
        rows = await reader.page(after=after, customer=customer, limit=100)
        out = []
        for row in rows:
            if row.kind == "decision":
                out.append((row.seq, row.outcome or "", await reader.get(row.seq)))
        return out
    finally:
        await reader.close()


def check(family: Family, result: Outcome) -> list[str]:
    """What is wrong with one message's treatment; empty when it is right."""
    line, problems = result.line, []
    where = f"{line.family}:{line.number}"
    expected = EXPECTED.get((line.family, line.number))
    if expected is not None:
        if result.outcome != "withheld" or result.reason != expected.reason:
            problems.append(
                f"{where}: expected withheld ({expected.reason}: {expected.why}), "
                f"found {result.outcome} ({result.reason})"
            )
        return problems
    if result.outcome not in ("shared", "altered") or result.body is None or result.topic is None:
        return [f"{where}: expected a release, found {result.outcome} ({result.reason})"]
    for path, treatment in FIELD_FAILURES.get((line.family, line.number), {}).items():
        withheld = any(w == path or w.startswith(path + "[") for w in result.withheld)
        if not withheld or f"“{path}” could not be altered" not in result.explanation:
            problems.append(f"{where}: {path} should be withheld ({treatment} failed)")
    sent: Any = orjson.loads(line.payload)
    got: Any = orjson.loads(result.body)
    upstream_levels = result.topic.split("/")
    device_levels = line.topic.split("/")
    out_text = result.topic + "\n" + result.body.decode("utf-8")
    for personal in line.personal:
        level = _TOPIC_LEVEL.match(personal)
        if level is not None:
            raw = device_levels[int(level.group(1))]
            if raw in upstream_levels or any(
                raw in u for u in upstream_levels if not _PSEUDONYM.match(u)
            ):
                problems.append(f"{where}: topic level {raw!r} ({personal}) in {result.topic!r}")
            continue
        if personal == "$payload":
            if result.body == line.payload.encode():
                problems.append(f"{where}: the personal plain-text body left unchanged")
            continue
        before, after = values_at(sent, personal), values_at(got, personal)
        for value in after:
            if value in before:
                problems.append(f"{where}: {personal} = {value!r} left unchanged")
        for text in {s for v in before for s in strings_in(v) if len(s) >= 4}:
            if text in out_text:
                problems.append(f"{where}: {personal}'s {text!r} appears upstream")
    p = profile(line.family)
    match = p.match(line.topic)
    assert match is not None
    stream = family.streams[match.pattern]
    suggestion = suggested_grant(line.family, match.pattern)
    for path, how in suggestion.fields.items():
        if how == "keep" and path != "$payload" and values_at(got, path) != values_at(sent, path):
            problems.append(
                f"{where}: {path} kept by the profile, but {values_at(sent, path)!r} "
                f"arrived as {values_at(got, path)!r}"
            )
    granted = [*suggestion.fields, *suggestion.companions]
    if "$payload" not in granted:
        for leaf in leaf_paths(got):
            if not covered(leaf, granted):
                problems.append(f"{where}: {leaf} arrived but the grant does not name it")
    for name, names in family.released_levels[stream].items():
        personal_level = any(
            (f := p.field(f"$topic.{n}")) is not None and f.personal is not Personal.NONE
            for n in names
        )
        if personal_level and not any(_PSEUDONYM.match(u) for u in upstream_levels):
            problems.append(f"{where}: personal topic level {{{name}}} is not pseudonymised")
    return problems


@pytest.mark.parametrize("families", RUNS, ids=["+".join(run) for run in RUNS])
async def test_every_message_gets_its_profile_treatment(
    tmp_path: Path, families: list[str]
) -> None:
    chosen = [FAMILIES[name] for name in families]
    devices = [(f.customer, f.device, f.name) for f in chosen]
    policies = {f"{f.name}.yaml": f.policy for f in chosen}
    results: list[tuple[Family, Outcome]] = []
    async with running_gateway(tmp_path, policies, devices) as h:
        db = h.gateway.config.database_path
        committed = 0
        for family in chosen:
            link = await h.device(family.customer, family.device)
            last_seq = 0
            for line in LINES[family.name]:
                arrived = len(h.cloud.received)
                await link.publish(line.topic, line.payload.encode("utf-8"), 1)
                committed += 1
                await h.wait_committed(committed)
                decisions = await new_decisions(db, last_seq, family.customer)
                assert len(decisions) == 1, (line, decisions)  # one recipient: one entry
                last_seq, outcome, detail = decisions[0]
                topic = body = None
                if outcome in ("shared", "altered"):
                    await h.cloud.wait_for(arrived + 1)
                    message = h.cloud.received[arrived]
                    topic, body = message.topic, message.payload
                    assert (topic, body) == (detail.topic, detail.content), "log ≠ upstream"
                results.append(
                    (
                        family,
                        Outcome(
                            line,
                            outcome,
                            detail.reason,
                            detail.withheld,
                            detail.row.text_en,
                            topic,
                            body,
                        ),
                    )
                )
            await link.close()
        async with asyncio.timeout(10):  # every release was acknowledged upstream
            while outbox_rows(db):
                await asyncio.sleep(0.05)
    problems = [problem for family, result in results for problem in check(family, result)]
    assert not problems, "\n".join(problems)
    assert len(results) == sum(len(LINES[name]) for name in families)
    report = verify_db(db)
    assert report.ok, report


def outbox_rows(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        count: int = conn.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return count
    finally:
        conn.close()
