"""The bundle's JSON lines as typed models: every field's type and shape checked, a field
that does not hold refused as unusable input naming its line and field (SPEC §6: all hex is
lower case), by the whole-file reader and the streaming one alike."""

from __future__ import annotations

import io

import pytest

from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.bundle_file import NotProven
from gateway.log.bundle_models import HeaderLine, line_model
from gateway.log.bundle_stream import prove_bundle
from gateway.log.keys import Signer
from gateway.log.verdict import UnusableInput
from tests.log.conftest import Log, make_draft
from tests.log.test_bundle_lines import Row, dump, rows_of

C = "baeckerei-schmidt"


def _exported(log: Log) -> list[Row]:
    log.write([make_draft(i, customer=C) for i in range(4)])
    return rows_of(export_customer(log.path, C))


def test_an_exported_bundle_still_verifies(log: Log, signer: Signer) -> None:
    """The models take exactly what the exporter writes: the file re-dumped is the same bytes
    and proves good through the streaming reader."""
    rows = _exported(log)
    data = dump(rows)
    assert data == export_customer(log.path, C)
    verdict = prove_bundle(lambda: io.BytesIO(data), signer.public)
    assert verdict.problem is None and verdict.size == 4


@pytest.mark.parametrize(
    ("kind", "key"),
    [("header", "key"), ("body", "digest"), ("names", "commitment"), ("names", "salt")],
)
def test_upper_case_hex_is_unusable_naming_line_and_field(
    log: Log, signer: Signer, kind: str, key: str
) -> None:
    rows = _exported(log)
    at = next(i for i, r in enumerate(rows) if r["t"] == kind)
    rows[at][key] = str(rows[at][key]).upper()
    data = dump(rows)
    with pytest.raises(NotProven):
        prove_bundle(lambda: io.BytesIO(data), signer.public)
    with pytest.raises(
        UnusableInput, match=rf"^bundle line {at + 1}: {key}: expected 32 bytes in lower-case hex"
    ):
        verify_bundle(data, signer.public)


def _header(**changes: object) -> dict[str, object]:
    line: dict[str, object] = {
        "t": "header",
        "format": "einblick-bundle/v3",
        "origin": "einblick.example/log",
        "customer": C,
        "key": "ab" * 32,
        "start": 1,
        "start_hashes": ["cd" * 32],
    }
    return line | changes


def test_a_good_header_reads_into_bytes() -> None:
    header = line_model("header", _header(), 1)
    assert isinstance(header, HeaderLine)
    assert header.key == bytes([0xAB]) * 32
    assert header.start_hashes == [bytes([0xCD]) * 32]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"start_hashes": ["CD" * 32]}, r"start_hashes\[0\]: expected 32 bytes in lower-case hex"),
        ({"start_hashes": ["cd" * 31]}, r"start_hashes\[0\]: expected 32 bytes in lower-case hex"),
        ({"start_hashes": ["zz" * 32]}, r"start_hashes\[0\]: expected 32 bytes in lower-case hex"),
        ({"start_hashes": "cd" * 32}, r"start_hashes: "),
        ({"start": "1"}, r"start: expected a non-negative integer, found '1'"),
        ({"start": True}, r"start: expected a non-negative integer, found True"),
        ({"start": -1}, r"start: expected a non-negative integer, found -1"),
        ({"start": 2**53}, r"start: expected a non-negative integer"),
        ({"customer": 7}, r"customer: expected a string, found int"),
        ({"key": None}, r"key: expected 32 bytes in lower-case hex, found None"),
    ],
    ids=[
        "start-hash-upper",
        "start-hash-short",
        "start-hash-not-hex",
        "start-hashes-not-a-list",
        "start-a-string",
        "start-a-bool",
        "start-negative",
        "start-past-2^53",
        "customer-a-number",
        "key-null",
    ],
)
def test_a_header_field_that_does_not_hold_is_named(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(UnusableInput, match=rf"^bundle line 1: {message}"):
        line_model("header", _header(**changes), 1)


def test_an_upper_case_start_hash_is_refused_by_both_readers(signer: Signer) -> None:
    """Before the models, ``bytes.fromhex`` took upper case here in both readers."""
    data = dump([_header(start_hashes=["CD" * 32])])
    with pytest.raises(NotProven):
        prove_bundle(lambda: io.BytesIO(data), signer.public)
    with pytest.raises(UnusableInput, match=r"^bundle line 1: start_hashes\[0\]: expected 32"):
        verify_bundle(data, signer.public)
