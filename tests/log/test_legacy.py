"""A log written by the hash-chain release is sealed, not rewritten: its chains' final hashes
(a tail no checkpoint signed included) open each new tree, the old part still verifies by the
legacy path, and exports made by that release still verify."""

from __future__ import annotations

import dataclasses
import io
import shutil
import sqlite3
from pathlib import Path

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.commands.log import verify_command
from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.chain import entry_hash
from gateway.log.keys import Signer
from gateway.log.migrations import schema_version
from gateway.log.reader import Reader
from gateway.log.verify import verify_db
from tests.log.conftest import Log, make_draft

LEGACY = Path(__file__).with_name("data") / "legacy"


@pytest.fixture
def legacy_signer() -> Signer:
    seed = bytes.fromhex((LEGACY / "legacy.seed").read_text().strip())
    return Signer(Ed25519PrivateKey.from_private_bytes(seed))


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    copy = tmp_path / "einblick.db"
    shutil.copyfile(LEGACY / "legacy.db", copy)
    return copy


def _verify(bundle: Path, key: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = verify_command(bundle=bundle, db=None, customer=None, key=key, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_the_old_chains_are_sealed_in_each_new_trees_first_entry(
    old_db: Path, legacy_signer: Signer, tmp_path: Path
) -> None:
    with sqlite3.connect(old_db) as conn:
        assert schema_version(conn) == 3
        old_heads = dict(
            conn.execute(
                "SELECT c.name, (SELECT hash FROM entries e WHERE e.chain_id = c.id"
                " ORDER BY idx DESC LIMIT 1) FROM chains c"
            ).fetchall()
        )
    log = Log(
        old_db, legacy_signer, "edge-legacy"
    )  # upgrades the schema, then the writer seals at start
    try:
        rows = log.conn.execute(
            "SELECT c.name, t.base, b.doc FROM trees t JOIN chains c ON c.id = t.chain_id"
            " JOIN entries e ON e.chain_id = c.id AND e.idx = t.base"
            " JOIN bodies b ON b.id = e.body_id"
        ).fetchall()
        assert {name for name, _, _ in rows} == {"schmidt", "huber"}
        for name, base, doc in rows:
            body = orjson.loads(doc)
            assert body["reason"] == "log_sealed"
            assert body["reason_params"] == {
                "legacy_size": str(base),
                "legacy_head": bytes(old_heads[name]).hex(),
            }
        assert dict((n, b) for n, b, _ in rows)["schmidt"] == 11  # 9 signed + 2 unsigned
        report = verify_db(old_db, public_key=legacy_signer.public)
        assert report.ok, report.summary()
        assert report.unsigned == 0  # the old unsigned tail is covered through the seal
        log.write([make_draft(i, customer="schmidt") for i in range(5)])
        report = verify_db(old_db, public_key=legacy_signer.public)
        assert report.ok and report.unsigned == 0, report.summary()
        verdict = verify_bundle(export_customer(old_db, "schmidt"), legacy_signer.public)
        assert verdict.ok and verdict.size == 6, verdict.problem
    finally:
        log.close()


def test_an_old_tail_rewritten_without_the_key_is_caught_by_the_seal(
    old_db: Path, legacy_signer: Signer
) -> None:
    """The chain's last two entries were never signed: anyone could re-hash them consistently.
    The tree's first entry, signed, holds the chain's final hash, so that is caught."""
    Log(old_db, legacy_signer, "edge-legacy").close()
    with sqlite3.connect(old_db) as conn:
        chain_id = conn.execute("SELECT id FROM chains WHERE name = 'schmidt'").fetchone()[0]
        (prev,) = conn.execute(
            "SELECT hash FROM entries WHERE chain_id = ? AND idx = 9", (chain_id,)
        ).fetchone()
        seq, at, digest, source, commitment = conn.execute(
            "SELECT e.seq, e.at, b.digest, e.source, e.commitment FROM entries e"
            " JOIN bodies b ON b.id = e.body_id WHERE e.chain_id = ? AND e.idx = 10",
            (chain_id,),
        ).fetchone()
        rehashed = entry_hash(bytes(prev), 10, at + 1, bytes(digest), bytes(source), commitment)
        conn.execute("UPDATE entries SET at = ?, hash = ? WHERE seq = ?", (at + 1, rehashed, seq))
    problem = verify_db(old_db, public_key=legacy_signer.public).first
    assert problem is not None and problem.customer == "schmidt"
    assert problem.index == 10 and "sealed chain" in problem.what


def test_a_decision_taken_again_names_the_one_it_replaces_by_its_leaf_index(
    old_db: Path, legacy_signer: Signer
) -> None:
    """In a log upgraded from 0.1.0 the tree starts above the old chain's stored positions
    (its ``base``): ``supersedes`` is the leaf index, as a bundle numbers the entries, and a
    decision in the sealed old chain, outside the tree, is not named. The counts find the
    replaced entry by it."""
    log = Log(old_db, legacy_signer, "edge-legacy")
    try:
        old = log.conn.execute(
            "SELECT e.seq FROM entries e JOIN chains c ON c.id = e.chain_id"
            " WHERE c.name = 'schmidt' ORDER BY e.idx LIMIT 1"
        ).fetchone()[0]
        log.write([make_draft(1, customer="schmidt")])
        first, idx = log.conn.execute(
            "SELECT seq, idx FROM entries ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        chain_id, base = log.conn.execute(
            "SELECT t.chain_id, t.base FROM trees t JOIN chains c ON c.id = t.chain_id"
            " WHERE c.name = 'schmidt'"
        ).fetchone()
        assert base > 0
        log.write([dataclasses.replace(make_draft(2, customer="schmidt"), supersedes=first)])
        log.write([dataclasses.replace(make_draft(3, customer="schmidt"), supersedes=old)])
        named = [
            orjson.loads(doc).get("supersedes")
            for (doc,) in log.conn.execute("SELECT doc FROM bodies ORDER BY id DESC LIMIT 2")
        ]
        assert named == [None, idx - base]  # the old chain's: not named; the tree's: its leaf
        reader = Reader.over(log.conn, old_db)
        top = log.conn.execute("SELECT max(idx) + 1 FROM entries WHERE chain_id = ?", (chain_id,))
        hi = int(top.fetchone()[0])
        groups, _ = reader.report_range(chain_id, 0, base, hi)
        settled = reader.without_superseded(chain_id, groups, 0, base, hi)
        replaced = log.conn.execute("SELECT body_id FROM entries WHERE seq = ?", (first,))
        body_id = replaced.fetchone()[0]
        assert settled.get(body_id, (0,))[0] == groups[body_id][0] - 1
    finally:
        log.close()
