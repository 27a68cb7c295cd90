"""The auditor: after a run, account for every device message against the log and the upstreams.

    python -m tests.faults.audit --config einblick.yaml --received upstream.jsonl \\
        [--published devices.jsonl] [--max-duplicates N] [--allow-pending]

Inputs are JSON Lines, one message per line: ``{"topic": "...", "payload_b64": "..."}``, optionally
with ``"recipient"``. ``--received`` is everything a subscriber saw on the recipients' brokers;
``--published`` is every distinct message the devices published (and had acknowledged).

What it checks, and what a failure means:

- the log verifies with the gateway's public key (invariant 4);
- every received upstream message is the content of a released (shared or altered) log entry for
  the same topic: nothing left the box without a record (invariant 2);
- no received message carries a field outside what its entry says was shared or altered, nor a
  field the entry says was withheld (invariant 1);
- every published message has a decision entry whose source digest is the SHA-256 of its bytes;
  each release it got was received upstream, withheld at send time with a reason, decided again
  at send time (gateway/messages/sendtime.py: a later send-time entry of the same message and
  recipient takes its place and is accounted for in turn), or (with ``--allow-pending``) still
  waits in the outbox. A withheld decision must name its reason. A published message with no
  entry, or a release that went nowhere, is *lost* (invariant 3), named with its recipient and
  every entry of it for that recipient;
- duplicates (the same release received more than once) are counted, and bounded if asked.

The summary is one JSON object on stdout; each problem is a line on stderr; the exit code is 0
when the audit passes, 1 when it does not, 2 when the inputs cannot be read.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import sqlite3
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import orjson

from gateway.config import load_config
from gateway.errors import GatewayError
from gateway.log.chain import source_commitment
from gateway.log.keys import load_public_key
from gateway.log.reader import Reader
from gateway.log.verify import verify_db
from policies.listing import leaves
from policies.numbers import loads_exact

__all__ = ["AuditReport", "Captured", "audit", "main", "read_jsonl", "write_jsonl"]

_RELEASED = ("shared", "altered")
# How every send-time entry's English text begins (gateway/messages/sendtime_text.py; a test
# holds each text to it). The entry's body has no other mark: it records a decision like any.
AT_SEND = ("Re-decided at send time", "Withheld at send time")


@dataclass(frozen=True, slots=True)
class Captured:
    """One MQTT message as a subscriber or a device saw it."""

    topic: str
    payload: bytes
    recipient: str | None = None

    def line(self) -> bytes:
        value: dict[str, str] = {
            "topic": self.topic,
            "payload_b64": base64.b64encode(self.payload).decode(),
        }
        if self.recipient is not None:
            value["recipient"] = self.recipient
        return orjson.dumps(value)


@dataclass(slots=True)
class AuditReport:
    offered: int = 0  # distinct messages the devices published
    forwarded: int = 0  # ... of which at least one release reached an upstream
    withheld: int = 0  # ... of which nothing left, and the log says why
    lost: int = 0  # ... of which the log or the upstreams have no trace
    pending: int = 0  # ... of which a release still waits in the outbox
    received: int = 0  # upstream arrivals, duplicates included
    duplicates: int = 0  # upstream arrivals beyond the first of each release
    withheld_at_send: int = 0  # releases withheld because consent went while they waited
    entries: int = 0  # decision entries in the log
    log_ok: bool = False
    reasons: dict[str, int] = field(default_factory=dict)  # why offered messages were withheld
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["ok"] = self.ok
        out["problems"] = len(self.problems)
        return out


@dataclass(slots=True)
class _Entry:
    seq: int
    source: bytes
    recipient: str | None
    outcome: str | None
    reason: str | None
    shared: tuple[str, ...]
    altered: tuple[str, ...]
    withheld: tuple[str, ...]
    topic: str | None
    content: bytes | None
    unlisted: int = 0  # released paths the entry counts but does not list (``omitted``)
    grant: str | None = None
    at_send: bool = False  # written by the send-time check, in place of an earlier release

    def named(self) -> str:
        at = " at send time" if self.at_send else ""
        return f"{self.seq} ({self.outcome}{at}{f', {self.reason}' if self.reason else ''})"


def read_jsonl(path: Path) -> list[Captured]:
    out = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
            out.append(
                Captured(
                    str(value["topic"]),
                    base64.b64decode(value["payload_b64"], validate=True),
                    value.get("recipient"),
                )
            )
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise GatewayError(
                f"{path}:{number}: expected {{'topic', 'payload_b64'}}, found {line[:80]!r}"
            ) from exc
    return out


def write_jsonl(path: Path, messages: Iterable[Captured]) -> None:
    path.write_bytes(b"".join(m.line() + b"\n" for m in messages))


def _subject_keys(db: Path) -> list[bytes]:
    """The per-subject keys still held (an erased subject's entries can no longer be matched)."""
    reader = Reader.open(db)
    try:
        return reader.subject_keys()
    finally:
        reader.close()


def _decisions(db: Path) -> list[_Entry]:
    reader = Reader.open(db)
    try:
        rows = reader.entries_with_content()
        at_send = _written_at_send(reader)
    finally:
        reader.close()
    out = []
    for seq, source, body, topic, content in rows:
        if body.get("kind") != "decision":
            continue
        entry = _Entry(
            seq=int(seq),
            source=source,
            recipient=body.get("recipient"),
            outcome=body.get("outcome"),
            reason=body.get("reason"),
            shared=tuple(body.get("shared") or ()),
            altered=tuple(a[0] for a in body.get("altered") or ()),
            withheld=tuple(body.get("withheld") or ()),
            topic=topic,
            content=content,
            unlisted=sum(
                n
                for name, n in (body.get("omitted") or {}).items()
                if name in ("shared", "altered")
            ),
            grant=body.get("grant"),
            at_send=int(seq) in at_send,
        )
        out.append(entry)
    return out


def _written_at_send(reader: Reader) -> set[int]:
    """The entries the send-time check wrote, by their English text (the body's text is stored
    apart from it and shared by entries alike; each is read once)."""
    found: set[int] = set()
    lo = 0
    while lines := reader.lines(None, lo=lo, limit=10_000):
        found.update(
            line.seq
            for line in lines
            if reader.body(line.body_id).texts.get("en", "").startswith(AT_SEND)
        )
        lo = lines[-1].seq + 1
    return found


def _fields_problem(entry: _Entry, payload: bytes) -> str | None:
    """Why ``payload`` carries more than ``entry`` says was released, or None."""
    if "$payload" in entry.shared or "$payload" in entry.altered:
        return None  # a whole body released as it is (plain text or opaque)
    try:
        # Literal-keeping: a kept 1e999 or 2**70 is released as written, beyond what orjson reads.
        root = loads_exact(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "a JSON release arrived as something that is not JSON"
    found = set(leaves(root, ""))
    allowed = set(entry.shared) | set(entry.altered)
    # A field released whole (``door_open: keep``) may hold an object: its leaves come with it.
    extra = sorted(path for path in found if not _covered(path, allowed))
    if len(extra) > entry.unlisted:  # a capped list names only the first paths; it counts the rest
        return f"fields {extra} are not among those shared or altered ({sorted(allowed)})"
    leaked = sorted(path for path in found if _covered(path, set(entry.withheld)))
    if leaked:
        return f"fields {leaked} were recorded as withheld"
    return None


def _covered(path: str, released: set[str]) -> bool:
    """True when ``path`` is one of ``released`` or lies inside one of them."""
    if path in released:
        return True
    return any(char in ".[" and path[:end] in released for end, char in enumerate(path))


def audit(
    db: Path,
    public_key_path: Path,
    received: Sequence[Captured],
    published: Sequence[Captured] | None,
    *,
    topic_prefix: dict[str, str] | None = None,
    pending: Sequence[bytes] = (),
    max_duplicates: int | None = None,
    allow_pending: bool = False,
) -> AuditReport:
    """Account for ``published`` and ``received`` against the log at ``db`` (see module doc)."""
    report = AuditReport(received=len(received))
    prefix = topic_prefix or {}
    verified = verify_db(db, public_key=load_public_key(public_key_path))
    report.log_ok = verified.ok
    if not verified.ok:
        report.problems.append(f"the log does not verify: {verified.summary()}")
    entries = _decisions(db)
    report.entries = len(entries)
    keys = _subject_keys(db)

    def sources(payload: bytes) -> list[bytes]:
        """The keyed digests a message from any subject still held would have in the log."""
        digest = hashlib.sha256(payload).digest()
        return [source_commitment(key, digest) for key in keys]

    by_source: dict[bytes, list[_Entry]] = {}
    by_release: dict[tuple[str, bytes], list[_Entry]] = {}
    for entry in entries:
        by_source.setdefault(entry.source, []).append(entry)
        if entry.outcome in _RELEASED and entry.content is not None and entry.topic is not None:
            topic = prefix.get(entry.recipient or "", "") + entry.topic
            by_release.setdefault((topic, entry.content), []).append(entry)
        if entry.outcome == "withheld" and not entry.reason:
            report.problems.append(f"entry {entry.seq}: withheld without a reason")
    # Upstream -> log: every arrival is a recorded release, with no field beyond it.
    arrivals: Counter[tuple[str, bytes]] = Counter()
    for message in received:
        key = (message.topic, message.payload)
        arrivals[key] += 1
        if arrivals[key] > 1:
            continue
        matches = [
            e
            for e in by_release.get(key, [])
            if message.recipient is None or e.recipient == message.recipient
        ]
        if not matches:
            report.problems.append(
                f"{message.topic}: {message.payload[:60]!r} reached an upstream with no log entry"
            )
            continue
        problem = _fields_problem(matches[0], message.payload)
        if problem is not None:
            report.problems.append(f"entry {matches[0].seq} ({message.topic}): {problem}")
    # A release arriving more often than there were distinct messages behind it is a duplicate
    # (the same message decided twice after a crash has one source, so it counts once).
    report.duplicates = sum(
        max(0, count - len({e.source for e in by_release.get(key, [])} or {b""}))
        for key, count in arrivals.items()
    )
    if max_duplicates is not None and report.duplicates > max_duplicates:
        report.problems.append(
            f"{report.duplicates} duplicates upstream; expected at most {max_duplicates}"
        )
    if published is None:
        return report
    # Device -> log -> upstream: every message accounted for.
    waiting = set(pending)
    seen: set[bytes] = set()
    for message in published:
        digest = hashlib.sha256(message.payload).digest()
        if digest in seen:
            continue  # the same bytes published twice are one message to account for
        seen.add(digest)
        report.offered += 1
        decided = [e for source in sources(message.payload) for e in by_source.get(source, [])]
        if not decided:
            report.lost += 1
            report.problems.append(f"{message.topic}: {message.payload[:60]!r} has no log entry")
            continue
        released = [e for e in decided if e.outcome in _RELEASED]
        delivered = missing = waits = False
        for entry in released:
            assert entry.content is not None and entry.topic is not None
            topic = prefix.get(entry.recipient or "", "") + entry.topic
            later = _decided_again(entry, decided)
            if arrivals[(topic, entry.content)]:
                delivered = True
            elif later is not None:
                # Its row was decided again before it left: the later entry is what left (a
                # release, checked in its own turn) or why nothing did.
                if later.outcome not in _RELEASED:
                    report.withheld_at_send += 1
            elif any(
                w.reason for source in sources(entry.content) for w in by_source.get(source, [])
            ):
                report.withheld_at_send += 1
            elif allow_pending and entry.content in waiting:
                waits = True
            else:
                missing = True
                state = "still in the outbox" if entry.content in waiting else "not in the outbox"
                mine = [e.named() for e in decided if e.recipient == entry.recipient]
                report.problems.append(
                    f"entry {entry.seq}: {message.topic} {message.payload[:60]!r} released to "
                    f"{entry.recipient} on {topic} but never arrived ({state}); its entries for "
                    f"{entry.recipient}: {', '.join(mine)}"
                )
        if missing:
            report.lost += 1
        elif waits:
            report.pending += 1
        elif delivered:
            report.forwarded += 1
        else:
            report.withheld += 1
            for entry in decided:
                if entry.outcome == "withheld" and entry.reason:
                    report.reasons[entry.reason] = report.reasons.get(entry.reason, 0) + 1
                    break
    return report


def _decided_again(entry: _Entry, decided: Sequence[_Entry]) -> _Entry | None:
    """The send-time entry that took ``entry``'s place: the next one written at send time for
    the same message and recipient, of the same grant (a withheld one may name none): a send-time
    entry of another grant's row accounts for that row, never for this one."""
    for other in decided:
        if other.seq <= entry.seq or not other.at_send or other.recipient != entry.recipient:
            continue
        if other.grant == entry.grant or (other.grant is None and other.outcome not in _RELEASED):
            return other
    return None


def _pending_payloads(db: Path) -> list[bytes]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [bytes(row[0]) for row in conn.execute("SELECT payload FROM outbox")]
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.audit",
        description="Account for every device message against the log and what upstreams got.",
    )
    parser.add_argument("--config", type=Path, required=True, help="the gateway's einblick.yaml")
    parser.add_argument("--received", type=Path, required=True, help="upstream arrivals (JSONL)")
    parser.add_argument("--published", type=Path, help="what the devices published (JSONL)")
    parser.add_argument("--key", type=Path, help="public key (default: next to the signing key)")
    parser.add_argument("--max-duplicates", type=int, help="fail above this many duplicates")
    parser.add_argument(
        "--allow-pending", action="store_true", help="rows still in the outbox are not lost"
    )
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        key = args.key or config.signing_key_path.with_suffix(".pub")
        received = read_jsonl(args.received)
        published = read_jsonl(args.published) if args.published else None
        db = config.database_path
        if not db.exists():
            raise GatewayError(f"{db}: no log database here")
        report = audit(
            db,
            key,
            received,
            published,
            topic_prefix={r.name: r.topic_prefix for r in config.recipients},
            pending=_pending_payloads(db),
            max_duplicates=args.max_duplicates,
            allow_pending=args.allow_pending,
        )
    except (GatewayError, OSError) as exc:
        print(f"audit: {exc}", file=sys.stderr)
        return 2
    for problem in report.problems[:200]:
        print(f"audit: {problem}", file=sys.stderr)
    if len(report.problems) > 200:
        print(f"audit: ... and {len(report.problems) - 200} more", file=sys.stderr)
    sys.stdout.write(orjson.dumps(report.as_dict()).decode() + "\n")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
