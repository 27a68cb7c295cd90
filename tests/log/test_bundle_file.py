"""A bundle file read by kind of line: what pass 0 keeps, one cursor per kind that skips the
others wherever they stand, and every unusual layout left to the whole-file checker."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import IO

import orjson
import pytest

from gateway.log import bundle
from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.bundle_file import (
    Content,
    NotProven,
    checkpoint_notes,
    content_lines,
    lines_of,
    read_meta,
)
from gateway.log.bundle_lines import parse_bundle
from gateway.log.keys import Signer
from gateway.log.verdict import UnusableInput
from tests.log.conftest import Log, make_draft
from tests.log.test_bundle_lines import dump, rows_of

C = "baeckerei-schmidt"
V2 = Path(__file__).with_name("vectors") / "v2" / "good.bundle"


def _opener(data: bytes) -> Callable[[], IO[bytes]]:
    return lambda: io.BytesIO(data)


def _split(log: Log, monkeypatch: pytest.MonkeyPatch) -> bytes:
    """11 entries in lines of 3 (4 entries lines, 3 content lines)."""
    log.write([make_draft(i, customer=C) for i in range(11)])
    monkeypatch.setattr(bundle, "CHUNK", 3)
    return export_customer(log.path, C)


def test_pass_0_keeps_all_but_the_bulk_lines_and_the_cursors_find_them(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _split(log, monkeypatch)
    tree = parse_bundle(data).tree
    meta = read_meta(io.BytesIO(data))
    assert meta.header.customer == C
    assert meta.bodies == tree.bodies and meta.names == tree.names
    assert meta.texts == {} or all(why == "" for why in meta.texts.values())
    raw_lines = data.splitlines(keepends=True)
    for kind, count in (("entries", 4), ("content", 3), ("checkpoint", len(tree.checkpoints))):
        found = list(lines_of(_opener(data), meta, kind))
        assert len(found) == count
        for number, raw in found:  # line numbers as the whole-file reader counts them
            assert raw_lines[number - 1] == raw
            assert orjson.loads(raw)["t"] == kind


def test_a_line_of_another_kind_between_is_skipped(
    log: Log, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rows_of(_split(log, monkeypatch))
    content = next(r for r in rows if r["t"] == "content")
    rows.remove(content)
    second = [i for i, r in enumerate(rows) if r["t"] == "entries"][1]
    rows.insert(second, content)  # a content line between two entries lines
    data = dump(rows)
    meta = read_meta(io.BytesIO(data))
    entries = list(lines_of(_opener(data), meta, "entries"))
    assert len(entries) == 4 and all(b'"t":"entries"' in raw for _, raw in entries)
    assert len(list(content_lines(_opener(data), meta))) == 3
    assert verify_bundle(data, signer.public).ok


def test_content_is_taken_by_index_across_lines(log: Log, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _split(log, monkeypatch)
    held = sorted(parse_bundle(data).tree.content.items())
    content = Content(content_lines(_opener(data), read_meta(io.BytesIO(data))))
    first, rest = content.take(5), content.take(11)
    assert list(zip(*first, strict=True)) == [r for r in held if r[0] < 5]
    assert list(zip(*rest, strict=True)) == [r for r in held if r[0] >= 5]
    assert content.done()


def test_content_out_of_order_and_checkpoints_out_of_size_order_are_doubts(
    log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = rows_of(_split(log, monkeypatch))
    lines = [i for i, r in enumerate(rows) if r["t"] == "content"]
    rows[lines[0]], rows[lines[1]] = rows[lines[1]], rows[lines[0]]
    log.write([make_draft(i, customer=C) for i in range(11, 14)])  # a second checkpoint
    swapped = dump(rows)
    with pytest.raises(NotProven, match="index order"):
        list(content_lines(_opener(swapped), read_meta(io.BytesIO(swapped))))
    rows = rows_of(export_customer(log.path, C))
    notes = [i for i, r in enumerate(rows) if r["t"] == "checkpoint"]
    assert len(notes) >= 2
    rows[notes[0]], rows[notes[-1]] = rows[notes[-1]], rows[notes[0]]
    reordered = dump(rows)
    with pytest.raises(NotProven, match="by size"):
        list(checkpoint_notes(_opener(reordered), read_meta(io.BytesIO(reordered))))


def test_a_v2_file_and_a_line_out_of_its_fixed_form_are_left_to_the_checker(
    log: Log, signer: Signer
) -> None:
    with pytest.raises(NotProven, match="not a v3 bundle"):
        read_meta(io.BytesIO(V2.read_bytes()))
    log.write([make_draft(i, customer=C) for i in range(3)])
    data = export_customer(log.path, C)
    padded = data.replace(b'"first":0,', b'"first":00,', 1)
    assert padded != data
    with pytest.raises(NotProven, match="fixed form"):
        read_meta(io.BytesIO(padded))
    with pytest.raises(UnusableInput, match="bundle line 8"):  # the checker names the line
        verify_bundle(padded, signer.public)
    spaced = data.replace(b'{"data":"', b'{"data": "', 1)
    with pytest.raises(UnusableInput, match="canonical"):  # prove_bundle: NotProven
        read_meta(io.BytesIO(spaced))
