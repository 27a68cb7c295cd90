"""Entry bytes v2 (SPEC §3): the exact layout, its leaf hash, and every malformed form refused."""

from __future__ import annotations

import hashlib
import struct

import pytest

from gateway.log.leaf import (
    ENTRY_SIZE,
    Hashes,
    LeafError,
    Records,
    entry_bytes,
    entry_leaf,
    parse_entry,
    rotation_message_v2,
    tree_origin,
)

BODY, SOURCE, COMMIT = b"\x11" * 32, b"\x22" * 32, b"\x33" * 32


def test_the_layout_is_the_specs_byte_for_byte() -> None:
    raw = entry_bytes(7, -5, BODY, SOURCE, COMMIT)
    assert len(raw) == ENTRY_SIZE == 114
    assert raw[0] == 2
    assert struct.unpack(">Q", raw[1:9]) == (7,)
    assert struct.unpack(">q", raw[9:17]) == (-5,)  # time is signed
    assert raw[17:49] == BODY and raw[49:81] == SOURCE
    assert raw[81] == 1 and raw[82:] == COMMIT
    none = entry_bytes(7, 0, BODY, SOURCE, None)
    assert none[81] == 0 and none[82:] == bytes(32)


def test_the_leaf_is_rfc6962s_with_the_0x00_prefix() -> None:
    raw = entry_bytes(0, 1, BODY, SOURCE, None)
    assert entry_leaf(0, 1, BODY, SOURCE, None) == hashlib.sha256(b"\x00" + raw).digest()


def test_parse_gives_back_what_was_packed() -> None:
    assert parse_entry(entry_bytes(3, 9, BODY, SOURCE, COMMIT)) == (3, 9, BODY, SOURCE, COMMIT)
    assert parse_entry(entry_bytes(3, 9, BODY, SOURCE, None)) == (3, 9, BODY, SOURCE, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r[:-1], "114 long"),
        (lambda r: b"\x01" + r[1:], "version"),
        (lambda r: r[:81] + b"\x02" + r[82:], "commitment flag"),
        (lambda r: r[:82] + b"\x01" + r[83:], "32 zero bytes"),
    ],
)
def test_malformed_entry_bytes_are_refused(change: object, message: str) -> None:
    raw = entry_bytes(3, 9, BODY, SOURCE, None)
    assert callable(change)
    with pytest.raises(LeafError, match=message):
        parse_entry(change(raw))


def test_origin_and_rotation_record() -> None:
    assert tree_origin("edge-01", "baeckerei") == "edge-01/baeckerei"
    old, new = b"\x01" * 32, b"\x02" * 32
    message = rotation_message_v2("edge-01/b", 5, old, new)
    assert message == b"einblick/rotation/v2\x00edge-01/b\x00" + (5).to_bytes(8) + old + new


def test_records_unpack_each_entry_only_within_their_count() -> None:
    blob = b"".join(
        entry_bytes(i, 10 * i, BODY, SOURCE, COMMIT if i % 2 else None) for i in range(5)
    )
    records = Records(blob, 4)  # the fifth entry lies past the accepted ones
    assert len(records) == 4
    assert [r[1] for r in records] == [0, 1, 2, 3]
    assert [r[1] for r in reversed(records)] == [3, 2, 1, 0]
    assert records[1] == (2, 1, 10, BODY, SOURCE, 1, COMMIT)
    assert records[-1][1] == 3 and [r[1] for r in records[1:3]] == [1, 2]
    assert records.column(17, 32) == [BODY] * 4
    assert records.column(81, 1) == [b"\x00", b"\x01", b"\x00", b"\x01"]
    with pytest.raises(IndexError, match=r"outside 0\.\.3"):
        records[4]


def test_hashes_slice_their_blob_32_bytes_at_a_time() -> None:
    blob = b"".join(bytes([i]) * 32 for i in range(5))
    hashes = Hashes(blob)
    assert len(hashes) == 5 and list(hashes) == [bytes([i]) * 32 for i in range(5)]
    assert hashes[-1] == bytes([4]) * 32
    head = hashes[1:3]
    assert isinstance(head, Hashes) and head.blob == blob[32:96]
    assert list(hashes[::2]) == [bytes([i]) * 32 for i in (0, 2, 4)]
    assert len(hashes[4:2]) == 0
    with pytest.raises(IndexError):
        hashes[5]
    with pytest.raises(ValueError, match="not a whole number of 32-byte hashes"):
        Hashes(blob[:-1])
