"""What the benchmarks and the sample log do to the log's tables (gateway/log/synthetic.py):
preset keys are the ones the writer uses;
the baseline stores the drafts' rows; the leaf inputs are what the stored leaves were hashed
from; a planted tree answers proofs against its root."""

from __future__ import annotations

import hashlib
from pathlib import Path

from gateway.log.batches import commit_batch
from gateway.log.chain import source_commitment
from gateway.log.keys import Signer
from gateway.log.leaf import entry_leaf
from gateway.log.merkle import RightEdge, leaf_hash, node_hash, verify_inclusion
from gateway.log.synthetic import (
    append_plain,
    erasable_bytes,
    leaf_inputs,
    plant_tree,
    preset_subject_keys,
)
from gateway.log.tree import BLOCK, TreeHashes
from gateway.log.writer import LogWriter
from tests.log.conftest import ORIGIN, T0, Log, fresh_db, make_draft


def test_preset_keys_are_the_keys_the_writer_commits_under(tmp_path: Path, signer: Signer) -> None:
    conn = fresh_db(tmp_path / "log.db")

    def key_for(customer: str, subject: str) -> bytes:
        return hashlib.sha256(f"{customer}/{subject}".encode()).digest()

    devices = [f"oven-{i}" for i in range(3)]
    assert preset_subject_keys(conn, ["baeckerei-schmidt"], [*devices, "wartung-gmbh"], key_for)
    assert not preset_subject_keys(conn, ["other"], ["x"], key_for)  # a chain exists: untouched
    assert conn.execute("SELECT count(*) FROM chains").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM subject_keys").fetchone() == (4,)
    writer = LogWriter(conn, signer, ORIGIN)
    draft = make_draft(0)
    commit_batch(conn, writer, [draft], T0)
    (source,) = conn.execute("SELECT source FROM entries").fetchone()
    expected = source_commitment(key_for("baeckerei-schmidt", "oven-0"), draft.source_digest)
    assert bytes(source) == expected
    conn.close()


def test_the_baseline_stores_every_drafts_rows(tmp_path: Path) -> None:
    conn = fresh_db(tmp_path / "plain.db")
    empty = erasable_bytes(conn)
    drafts = [make_draft(i) for i in range(2500)]
    append_plain(conn, drafts)
    assert conn.execute("SELECT count(*), max(seq) FROM entries").fetchone() == (2500, 2500)
    held = sum(d.content is not None for d in drafts)
    assert conn.execute("SELECT count(*) FROM content").fetchone() == (held,)
    assert not conn.in_transaction
    # the payloads are what an erasure could delete: they show in the erasable bytes
    assert erasable_bytes(conn) >= empty + sum(len(d.content or b"") for d in drafts)
    conn.close()


def test_leaf_inputs_are_what_the_stored_leaves_were_hashed_from(log: Log) -> None:
    log.write([make_draft(i) for i in range(6)])
    log.write([make_draft(i, customer="metallbau-huber") for i in range(6, 9)])
    (chain_id,) = log.conn.execute(
        "SELECT id FROM chains WHERE name = 'baeckerei-schmidt'"
    ).fetchone()
    inputs = leaf_inputs(log.conn, chain_id)
    stored = [
        bytes(h)
        for (h,) in log.conn.execute(
            "SELECT hash FROM entries WHERE chain_id = ? ORDER BY idx", (chain_id,)
        )
    ]
    assert [i for i, *_ in inputs] == list(range(6))
    assert [entry_leaf(*row) for row in inputs] == stored


def test_a_planted_tree_proves_inclusion_against_its_root(tmp_path: Path) -> None:
    conn = fresh_db(tmp_path / "proofs.db")
    size = 4 * BLOCK
    leaves = [leaf_hash(i.to_bytes(8, "big")) for i in range(size)]
    level8 = []
    for block in range(size // BLOCK):
        level = leaves[block * BLOCK : (block + 1) * BLOCK]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        level8.append(level[0])
    chain_id = plant_tree(conn, [(8, i, h) for i, h in enumerate(level8)], list(enumerate(leaves)))
    edge = RightEdge()
    for leaf in leaves:
        edge.append(leaf)
    root = edge.root()
    for index in (0, 300, size - 1):
        proof = TreeHashes(conn, chain_id, 0).inclusion(index, size)
        verify_inclusion(leaves[index], index, size, proof, root)
    assert not conn.in_transaction
    conn.close()
