"""The streaming proof of a bundle: it proves what the whole-file checker proves, with the same
figures, proves nothing the checker refuses, and holds a line, not the bundle, in memory."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import tracemalloc
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from gateway.log.bundle import (
    export_customer,
    read_kept,
    verify_bundle,
    verify_bundle_file,
    verify_whole_bundle,
)
from gateway.log.bundle_file import NotProven
from gateway.log.bundle_lines import content_columns, parse_bundle
from gateway.log.bundle_stream import prove_bundle
from gateway.log.keys import PublicKey, Signer, load_public_key
from gateway.log.leaf import ENTRY_SIZE, TreeInput
from gateway.log.merkle import leaf_hash
from gateway.log.verdict import Kept, TreeVerdict
from policies.model import RetentionSpec
from tests.log.conftest import T0, Log, make_draft
from tests.log.test_bundle_lines import content_line, dump, rows_of
from tests.log.test_retention import MEIER, SCHMIDT
from tests.log.test_retention import _apply as apply_retention
from tests.log.test_retention import _fill as fill_for_retention
from tests.log.test_transfer import NEW_BOX, OLD_BOX
from tests.log.test_transfer import _close as close_tree
from tests.log.test_transfer import _take_over as take_over

C = "baeckerei-schmidt"
VECTORS = Path(__file__).with_name("vectors")
BY = "Frau Schmidt (Inhaberin)"


def _kept_of(since: bytes | Path | None, pinned: PublicKey) -> Callable[[TreeInput], Kept] | None:
    if since is None:
        return None
    return lambda tree: read_kept(since, pinned, tree, with_leaves=False)


def _streamed(data: bytes, pinned: PublicKey, since: bytes | Path | None = None) -> TreeVerdict:
    return prove_bundle(lambda: io.BytesIO(data), pinned, kept=_kept_of(since, pinned))


def _figures(verdict: TreeVerdict) -> tuple[object, ...]:
    return (
        verdict.origin,
        verdict.customer,
        verdict.size,
        verdict.start,
        verdict.covered,
        verdict.checkpoints,
        verdict.keys,
        verdict.root,
        verdict.code,
    )


def _same(data: bytes, pinned: PublicKey, since: bytes | Path | None = None) -> TreeVerdict:
    """The stream proves ``data`` and says what the whole-file checker says."""
    whole = verify_whole_bundle(data, pinned, since=since)
    assert whole.ok, whole.problem
    streamed = _streamed(data, pinned, since)
    assert _figures(streamed) == _figures(whole)
    assert streamed.notes == whole.notes[-1:]
    return streamed


def _vectors() -> list[dict[str, str | int | None]]:
    listed: list[dict[str, str | int | None]] = json.loads((VECTORS / "vectors.json").read_text())
    return [v for v in listed if b"einblick-bundle/v3" in (VECTORS / str(v["file"])).read_bytes()]


def test_the_stream_proves_the_good_v3_vectors_with_the_checkers_figures() -> None:
    good = [v for v in _vectors() if v["expect"] == 0]
    assert len(good) >= 4  # plain, a rotated key, kept as a checkpoint and as a bundle
    for vector in good:
        since = vector.get("since")
        _same(
            (VECTORS / str(vector["file"])).read_bytes(),
            load_public_key(VECTORS / str(vector["key"])),
            None if since is None else VECTORS / str(since),
        )


def test_the_stream_proves_no_vector_the_checker_refuses() -> None:
    bad = [v for v in _vectors() if v["expect"] != 0]
    assert len(bad) >= 15
    proven = []
    for vector in bad:
        since = vector.get("since")
        try:
            _streamed(
                (VECTORS / str(vector["file"])).read_bytes(),
                load_public_key(VECTORS / str(vector["key"])),
                None if since is None else VECTORS / str(since),
            )
        except NotProven:
            continue
        proven.append(vector["file"])
    assert proven == []


def test_the_stream_proves_a_compacted_log_with_content_cut_by_retention(
    log: Log, signer: Signer
) -> None:
    fill_for_retention(log)
    apply_retention(log, SCHMIDT, RetentionSpec(content_days=30, entries_years=2))
    bundle = export_customer(log.path, SCHMIDT)
    verdict = _same(bundle, signer.public)
    assert verdict.start == 256  # the compacted block: the right edge starts from its hashes
    tree = parse_bundle(bundle).tree  # content absent, covered by the retention entry
    assert len(tree.content) < tree.entries[81::ENTRY_SIZE].count(1)
    _same(export_customer(log.path, MEIER), signer.public)


def test_the_stream_proves_a_log_after_an_erasure_and_refuses_it_without_one(log: Log) -> None:
    log.write([make_draft(i) for i in range(12)])
    bundle = export_customer(log.path, C)
    stripped = b"".join(
        line for line in bundle.splitlines(keepends=True) if b'"t":"names"' not in line
    )
    with pytest.raises(NotProven):
        _streamed(stripped, log.signer.public)
    log.conn.execute("BEGIN")
    log.writer.erase_subject(C, T0 + timedelta(days=1), BY)
    log.writer.checkpoint(T0 + timedelta(days=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    _same(export_customer(log.path, C), log.signer.public)


def test_the_stream_proves_a_handed_over_log_and_what_was_kept_before(tmp_path: Path) -> None:
    old_key, new_key = Signer.generate(), Signer.generate()
    old = Log(tmp_path / "a.db", old_key, OLD_BOX)
    old.write([make_draft(i, customer=C) for i in range(300)])
    kept = export_customer(old.path, C)
    new = Log(tmp_path / "b.db", new_key, NEW_BOX)
    closed = close_tree(old, new_key, 300)
    assert take_over(new, old.path, closed, new_key, 301)
    new.write([make_draft(i, customer=C) for i in range(400, 420)])
    bundle = export_customer(new.path, C)
    for pinned in (old_key.public, new_key.public):
        assert _same(bundle, pinned).size == 322
    _same(bundle, old_key.public, since=kept)
    new.close()
    old.close()


def test_content_out_of_index_order_is_left_to_the_checker_which_accepts_it(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(8)])
    rows = rows_of(export_customer(log.path, C))
    (line,) = [r for r in rows if r["t"] == "content"]
    records = sorted(_records(line), reverse=True)
    rows[rows.index(line)] = content_line(records)
    shuffled = dump(rows)
    with pytest.raises(NotProven, match="index order"):
        _streamed(shuffled, log.signer.public)
    assert verify_bundle(shuffled, log.signer.public).ok  # valid, just not the writer's order


def _records(line: dict[str, object]) -> list[tuple[int, bytes]]:
    indexes, records = content_columns(base64.b64decode(str(line["data"])), 1)
    return list(zip(indexes, records, strict=True))


def _peak(path: Path, check: Callable[[Path], object]) -> int:
    tracemalloc.start()
    try:
        check(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _stream_check(signer: Signer) -> Callable[[Path], object]:
    return lambda path: prove_bundle(lambda: path.open("rb"), signer.public)


def test_memory_is_bounded_by_a_line_not_by_the_bundle(tmp_path: Path, signer: Signer) -> None:
    sizes = {}
    for blocks in (2, 12):
        log = Log(tmp_path / f"{blocks}.db", signer)
        for b in range(blocks):
            log.write([make_draft(i, customer=C) for i in range(b * 1024, (b + 1) * 1024)])
        path = tmp_path / f"{blocks}.bundle"
        path.write_bytes(export_customer(log.path, C))
        log.close()
        sizes[blocks] = (path.stat().st_size, _peak(path, _stream_check(signer)))
    (small_file, small_peak), (large_file, large_peak) = sizes[2], sizes[12]
    assert large_file > 5 * small_file
    # six times the entries, about the same peak: one line and the tree's right edge
    assert large_peak < 1.5 * small_peak, sizes
    assert large_peak < large_file / 2, sizes


def test_an_entry_changed_with_its_listed_leaf_is_refused_by_the_root(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(8)])
    rows = rows_of(export_customer(log.path, C))
    (line,) = [r for r in rows if r["t"] == "entries"]
    data = bytearray(base64.b64decode(str(line["data"])))
    k = len(data) // (ENTRY_SIZE + 32)
    at = 3 * ENTRY_SIZE + 9  # entry 3's time, a second later
    data[at : at + 8] = (int.from_bytes(data[at : at + 8], "big") + 1_000_000).to_bytes(8, "big")
    entry = bytes(data[3 * ENTRY_SIZE : 4 * ENTRY_SIZE])
    data[k * ENTRY_SIZE + 3 * 32 : k * ENTRY_SIZE + 4 * 32] = leaf_hash(entry)
    rows[rows.index(line)] = {**line, "data": base64.b64encode(bytes(data)).decode()}
    changed = dump(rows)
    with pytest.raises(NotProven, match="root"):
        _streamed(changed, log.signer.public)
    verdict = verify_bundle(changed, log.signer.public)
    assert verdict.problem is not None and verdict.problem.index == 0
    assert "root hash" in verdict.problem.what


def test_a_bundle_from_a_pipe_is_read_whole_and_verified(log: Log, tmp_path: Path) -> None:
    log.write([make_draft(i, customer=C) for i in range(5)])
    data = export_customer(log.path, C)
    pipe = tmp_path / "bundle.fifo"
    os.mkfifo(pipe)
    found: list[TreeVerdict] = []
    reader = threading.Thread(
        target=lambda: found.append(verify_bundle_file(pipe, log.signer.public)), daemon=True
    )
    reader.start()
    pipe.write_bytes(data)  # returns once the reader has opened the pipe and taken it all
    reader.join(timeout=30)
    reopened = 0
    while reader.is_alive():  # it opened the pipe again, waiting for a writer: end that
        try:
            os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            break  # no reader any more
        reopened += 1
        reader.join(timeout=5)
    assert reopened == 0, "a pipe was read more than once"
    assert found and found[0].ok and found[0].size == 5
