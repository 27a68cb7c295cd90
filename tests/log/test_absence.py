"""Content in a proof: held content matches its commitment, and content may be missing only
behind a signed erasure of its subject or a retention cut-off after it (SPEC §5)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import orjson

from gateway.log.absence import check_content
from gateway.log.bundle import export_customer
from gateway.log.bundle_lines import parse_bundle
from gateway.log.leaf import ENTRY_LAYOUT, Record, TreeInput
from gateway.log.verdict import TAMPERED, TreeVerdict
from tests.log.conftest import T0, Log, make_draft

C = "baeckerei-schmidt"
Docs = dict[bytes, dict[str, object]]


def exported(log: Log) -> tuple[TreeInput, list[Record], Docs]:
    tree = parse_bundle(export_customer(log.path, C)).tree
    records = list(ENTRY_LAYOUT.iter_unpack(tree.entries))
    return tree, records, {d: orjson.loads(b) for d, b in tree.bodies.items()}


def verdict_of(tree: TreeInput, records: list[Record], docs: Docs) -> TreeVerdict:
    verdict = TreeVerdict(tree.origin, tree.customer)
    check_content(tree, records, docs, verdict)
    return verdict


def test_held_content_matches_and_changed_content_is_named(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(8)])
    tree, records, docs = exported(log)
    assert sorted(tree.content) == [0, 1, 2, 4, 5, 6]  # make_draft(3), (7) are withheld
    assert verdict_of(tree, records, docs).ok
    tail = bytearray(tree.content[4])
    tail[-2] ^= 1
    changed = replace(tree, content={**tree.content, 4: bytes(tail)})
    problem = verdict_of(changed, records, docs).problem
    assert problem is not None and (problem.code, problem.index) == (TAMPERED, 4)
    assert problem.what == "content does not match its commitment"
    stray = replace(tree, content={**tree.content, 3: tree.content[4]})
    problem = verdict_of(stray, records, docs).problem
    assert problem is not None and problem.index == 3
    assert problem.what == "content given for an entry that committed to none"


def test_content_moved_before_the_first_entry_is_not_taken_for_its_own(log: Log) -> None:
    """An index before the entries given (a compacted prefix) must not reach another entry's
    commitment: content moved from the second-last entry to index -2 is refused."""
    log.write([make_draft(i, customer=C) for i in range(8)])
    tree, records, docs = exported(log)
    assert 6 in tree.content and len(records) == 8
    moved = {i: t for i, t in tree.content.items() if i != 6} | {-2: tree.content[6]}
    problem = verdict_of(replace(tree, content=moved), records, docs).problem
    assert problem is not None and problem.index == -2
    assert problem.what == "content given for an entry that committed to none"


def test_removed_content_without_a_reason_is_tampering(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(8)])
    tree, records, docs = exported(log)
    held = {i: t for i, t in tree.content.items() if i not in (2, 5)}
    problem = verdict_of(replace(tree, content=held), records, docs).problem
    assert problem is not None and problem.index == 2
    assert "without a signed erasure or retention" in problem.what


def test_an_erasure_after_covers_its_device_only(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(8)])
    log.conn.execute("BEGIN")
    log.writer.erase_subject(f"{C}/oven-1", T0 + timedelta(hours=1), "customer")
    log.writer.checkpoint(T0 + timedelta(hours=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    tree, records, docs = exported(log)
    assert sorted(tree.content) == [0, 2, 5, 6]  # oven-1's (1, 4) are gone
    assert verdict_of(tree, records, docs).ok
    without_oven_2 = {i: t for i, t in tree.content.items() if i != 5}
    problem = verdict_of(replace(tree, content=without_oven_2), records, docs).problem
    assert problem is not None and problem.index == 5


def test_a_retention_cut_off_covers_content_older_than_it(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(8)])
    tree, records, docs = exported(log)
    cut = T0 + timedelta(milliseconds=45)  # after entries 0..4, before 5..7
    digest = b"\x07" * 32
    retention: Docs = {
        digest: {"kind": "retention", "reason_params": {"content_before": cut.isoformat()}}
    }
    at = records[-1][2] + 1
    record: Record = (2, 8, at, digest, bytes(32), 0, bytes(32))
    old_gone = {i: t for i, t in tree.content.items() if i >= 5}
    assert verdict_of(replace(tree, content=old_gone), [*records, record], docs | retention).ok
    newer_gone = {i: t for i, t in tree.content.items() if i != 6}
    problem = verdict_of(replace(tree, content=newer_gone), [*records, record], docs | retention)
    assert problem.problem is not None and problem.problem.index == 6
