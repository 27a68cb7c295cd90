"""Reading a bundle strictly: the v3 column layout (SPEC §6) as written, read back whole
across any line split, and every malformed content line refused as unusable input."""

from __future__ import annotations

import base64
import struct
from pathlib import Path

import orjson
import pytest

from gateway.log import bundle
from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.bundle_lines import _content_v3, parse_bundle
from gateway.log.jcs import canonical
from gateway.log.keys import Signer
from gateway.log.leaf import ENTRY_SIZE, parse_entry
from gateway.log.merkle import leaf_hash
from gateway.log.verdict import UnusableInput
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"
V2_VECTORS = Path(__file__).with_name("vectors") / "v2"
Row = dict[str, object]


def rows_of(data: bytes) -> list[Row]:
    return [orjson.loads(line) for line in data.splitlines()]


def dump(rows: list[Row]) -> bytes:
    return b"".join(canonical(r) + b"\n" for r in rows)


def content_line(records: list[tuple[int, bytes]]) -> Row:
    k = len(records)
    head = struct.pack(f">I{k}Q{k}I", k, *(i for i, _ in records), *(len(r) for _, r in records))
    data = head + b"".join(r for _, r in records)
    return {"t": "content", "data": base64.b64encode(data).decode()}


def test_an_entries_line_holds_its_entries_then_their_leaves(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(6)])
    rows = rows_of(export_customer(log.path, C))
    assert rows[0]["format"] == "einblick-bundle/v3"
    (line,) = [r for r in rows if r["t"] == "entries"]
    data = base64.b64decode(str(line["data"]))
    assert len(data) == 6 * (ENTRY_SIZE + 32)
    entries, leaves = data[: 6 * ENTRY_SIZE], data[6 * ENTRY_SIZE :]
    for i in range(6):
        entry = entries[i * ENTRY_SIZE : (i + 1) * ENTRY_SIZE]
        assert parse_entry(entry)[0] == i
        assert leaves[i * 32 : (i + 1) * 32] == leaf_hash(entry)


def test_a_content_line_holds_count_indexes_lengths_then_records(log: Log) -> None:
    log.write([make_draft(i, customer=C) for i in range(8)])
    data = export_customer(log.path, C)
    (line,) = [r for r in rows_of(data) if r["t"] == "content"]
    raw = base64.b64decode(str(line["data"]))
    (k,) = struct.unpack_from(">I", raw)
    indexes = struct.unpack_from(f">{k}Q", raw, 4)
    lengths = struct.unpack_from(f">{k}I", raw, 4 + 8 * k)
    assert indexes == (0, 1, 2, 4, 5, 6)  # make_draft(3) and (7) are withheld: no content
    assert len(raw) == 4 + 12 * k + sum(lengths)
    content = parse_bundle(data).tree.content
    at = 4 + 12 * k
    for index, n in zip(indexes, lengths, strict=True):
        assert content[index] == raw[at : at + n]
        at += n


def test_lines_split_anywhere_read_back_the_same_tree(
    log: Log, signer: Signer, monkeypatch: pytest.MonkeyPatch
) -> None:
    log.write([make_draft(i, customer=C) for i in range(11)])
    whole = parse_bundle(export_customer(log.path, C)).tree
    monkeypatch.setattr(bundle, "CHUNK", 3)
    split = export_customer(log.path, C)
    assert sum(1 for r in rows_of(split) if r["t"] == "entries") == 4
    assert sum(1 for r in rows_of(split) if r["t"] == "content") == 3
    tree = parse_bundle(split).tree
    assert tree.entries == whole.entries and list(tree.leaves) == list(whole.leaves)
    assert tree.content == whole.content
    assert verify_bundle(split, signer.public).ok


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda recs: [recs[0], recs[0]], "entry 0 is given twice"),
        (lambda recs: [(recs[0][0], recs[0][1][:33])], "shorter than 34 bytes"),
    ],
    ids=["twice-in-a-line", "too-short"],
)
def test_a_malformed_content_line_is_unusable(
    log: Log, signer: Signer, change: object, message: str
) -> None:
    log.write([make_draft(i, customer=C) for i in range(4)])
    rows = rows_of(export_customer(log.path, C))
    at = next(i for i, r in enumerate(rows) if r["t"] == "content")
    records = sorted(parse_bundle(dump(rows)).tree.content.items())
    assert callable(change)
    rows[at] = content_line(change(records))
    with pytest.raises(UnusableInput, match=message):
        verify_bundle(dump(rows), signer.public)


def test_an_index_given_again_on_a_later_line_is_unusable(log: Log, signer: Signer) -> None:
    log.write([make_draft(i, customer=C) for i in range(4)])
    rows = rows_of(export_customer(log.path, C))
    at = next(i for i, r in enumerate(rows) if r["t"] == "content")
    records = sorted(parse_bundle(dump(rows)).tree.content.items())
    again = [*rows[: at + 1], content_line(records[1:2]), *rows[at + 1 :]]
    with pytest.raises(UnusableInput, match=f"line {at + 2}: content: entry 1 is given twice"):
        verify_bundle(dump(again), signer.public)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x00\x00", "record count is cut off"),
        (struct.pack(">I", 1_000_000) + bytes(40), "1000000 records announced"),
        (struct.pack(">IQI", 1, 0, 40) + bytes(39), "add up to 40 bytes, the line holds 39"),
        (struct.pack(">IQI", 1, 0, 40) + bytes(41), "add up to 40 bytes, the line holds 41"),
    ],
    ids=["no-count", "count-beyond-line", "records-short", "bytes-left-over"],
)
def test_content_heads_that_do_not_fit_the_line_are_unusable(
    log: Log, signer: Signer, data: bytes, message: str
) -> None:
    log.write([make_draft(i, customer=C) for i in range(4)])
    rows = rows_of(export_customer(log.path, C))
    at = next(i for i, r in enumerate(rows) if r["t"] == "content")
    rows[at] = {"t": "content", "data": base64.b64encode(data).decode()}
    with pytest.raises(UnusableInput, match=message):
        verify_bundle(dump(rows), signer.public)


def test_a_v2_bundle_is_read_record_by_record() -> None:
    """The v2 layout interleaves each entry with its leaf: read back, the columns are the same
    as a v3 reader's (checked against the leaf of each entry)."""
    tree = parse_bundle((V2_VECTORS / "good.bundle").read_bytes()).tree
    count = len(tree.entries) // ENTRY_SIZE
    assert count == len(tree.leaves) > 0
    assert all(
        leaf_hash(tree.entries[i * ENTRY_SIZE : (i + 1) * ENTRY_SIZE]) == tree.leaves[i]
        for i in range(count)
    )
    assert tree.content and all(len(c) >= 34 for c in tree.content.values())


def test_the_specs_content_example_byte_for_byte() -> None:
    """SPEC §6: content for entries 5 and 9, of 40 and 61 bytes, is these 129 bytes, written by
    the exporter and read back by the reader."""
    five, nine = bytes(range(40)), bytes(range(100, 161))
    spec = bytes.fromhex("0000000200000000000000050000000000000009000000280000003d") + five + nine
    assert len(spec) == 129
    assert bundle._content_chunk([(5, five), (9, nine)]) == spec
    held: dict[int, bytes] = {}
    _content_v3(spec, 7, held)
    assert held == {5: five, 9: nine}
