"""A bundle file read strictly, line by line, into the proof checker's :class:`TreeInput`.

Every line must be one JSON object in its RFC 8785 form (the reader re-serialises each line
and refuses one that is not byte-identical), of a known type with exactly its fields, in the
order ``gateway/log/SPEC.md`` §6 gives; anything else is :class:`UnusableInput` (exit 3), named
by line number. Two layouts of the binary lines are read:

- ``einblick-bundle/v3`` (written today): an ``entries`` line holds its entries' bytes, then
  their listed leaves; a ``content`` line holds a count, the indexes, the lengths, then the
  records. Whole columns are sliced out at once, nothing is parsed per entry in Python.
- ``einblick-bundle/v2``: the same lines with interleaved records (entry bytes || leaf;
  ``u64 index || u32 n || n bytes``), read record by record.

What the bytes *mean* (whether they prove anything) is the checker's question, not this
module's: it only refuses what is not a bundle.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pybase64

from gateway.log.bundle_models import (
    FIELDS,
    AnyLine,
    BodyLine,
    ContentLine,
    EntriesLine,
    HeaderLine,
    NamesLine,
    TextLine,
    line_model,
)
from gateway.log.chain import text_digest
from gateway.log.jcs import MAX_SAFE_INTEGER
from gateway.log.leaf import ENTRY_SIZE, Hashes, TreeInput
from gateway.log.verdict import UnusableInput

__all__ = ["FORMAT", "FORMAT_V2", "Bundle", "content_columns", "parse_bundle"]

FORMAT = "einblick-bundle/v3"
FORMAT_V2 = "einblick-bundle/v2"
_RECORD = ENTRY_SIZE + 32  # an entry and its listed leaf
_CONTENT_HEAD = struct.Struct(">QI")  # v2: index, length of the record after it
_COUNT = struct.Struct(">I")  # v3: records in a content line
_MIN_CONTENT = 34  # salt (32), the topic part's flag, the content part's flag


@dataclass(slots=True)
class Bundle:
    tree: TreeInput
    texts_bad: dict[str, str]  # text digest -> why it does not hold (changed, missing)


def _fail(number: int, message: str) -> UnusableInput:
    return UnusableInput(f"bundle line {number}: {message}")


def _b64(text: str | memoryview, number: int, key: str) -> bytes:
    try:  # strict: only the alphabet, padding only at the end (SIMD C: 80x binascii here)
        ascii_text = text if isinstance(text, memoryview) else text.encode("ascii")
        raw = pybase64.b64decode(ascii_text, validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as exc:
        raise _fail(number, f"{key}: expected base64") from exc
    # Only the last group of four characters can carry padding bits that decoding ignores;
    # re-encoding that group (not the whole chunk) proves the text canonical.
    if raw:
        tail = len(raw) % 3 or 3
        canonical_text = base64.b64encode(raw[-tail:]) == ascii_text[-4:]
    else:
        canonical_text = not ascii_text
    if not canonical_text:
        raise _fail(number, f"{key}: base64 not in canonical form")
    return raw


_BULK_HEAD = b'{"data":"'
_CONTENT_TAIL = b'","t":"content"}'
_FIRST = b'","first":'
_ENTRIES_TAIL = b',"t":"entries"}'


def _bulk_line(
    data: bytes, view: memoryview, start: int, end: int
) -> tuple[str, int | None, memoryview] | None:
    """The line ``data[start:end]`` if it is an ``entries`` or ``content`` line in exactly its
    RFC 8785 form, split without parsing or copying its base64.

    Their canonical form is fixed: ``{"data":"<base64>","first":<n>,"t":"entries"}`` and
    ``{"data":"<base64>","t":"content"}``; base64 needs no escapes, so a line equal to that
    form byte for byte is canonical. Anything else (None) goes through the general parser,
    which refuses it or names what is wrong.
    """
    if not data.startswith(_BULK_HEAD, start, end):
        return None
    quote = data.find(b'"', start + len(_BULK_HEAD), end)
    if quote < 0:
        return None
    rest = data[quote:end]  # the few bytes after the base64
    if rest == _CONTENT_TAIL:
        kind, first = "content", None
    elif rest.startswith(_FIRST) and rest.endswith(_ENTRIES_TAIL):
        digits = rest[len(_FIRST) : -len(_ENTRIES_TAIL)]
        if not digits.isdigit() or (digits != b"0" and digits.startswith(b"0")):
            return None
        kind, first = "entries", int(digits)
        if first > MAX_SAFE_INTEGER:
            return None
    else:
        return None
    # the decoder checks every character against the alphabet: nothing to check here
    return kind, first, view[start + len(_BULK_HEAD) : quote]


def _lines(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(line number, start, end) of each line, without copying the file into lines."""
    number, start, last = 1, 0, len(data) - 1  # the file ends with a newline (checked)
    while start <= last:
        end = data.find(b"\n", start)
        yield number, start, end
        number, start = number + 1, end + 1


def _content_v2(chunk: bytes, number: int, into: dict[int, bytes]) -> None:
    """u64 index || u32 length || that many bytes (salt, topic part, content part), repeated."""
    pos, end = 0, len(chunk)
    head = _CONTENT_HEAD
    while pos < end:
        if end - pos < head.size:
            raise _fail(number, "content: a record is cut off")
        index, size = head.unpack_from(chunk, pos)
        pos += head.size
        if size < _MIN_CONTENT or pos + size > end:
            raise _fail(number, f"content: record of entry {index} has an impossible length")
        if index in into:
            raise _fail(number, f"content: entry {index} is given twice")
        into[index] = chunk[pos : pos + size]
        pos += size


def content_columns(chunk: bytes, number: int) -> tuple[tuple[int, ...], list[bytes]]:
    """(indexes, records) of a v3 content line: u32 k || k × u64 index || k × u32 length ||
    the k records, one after the other (indexes not yet checked for repeats)."""
    if len(chunk) < _COUNT.size:
        raise _fail(number, "content: the record count is cut off")
    (k,) = _COUNT.unpack_from(chunk)
    start = _COUNT.size + 12 * k
    if start > len(chunk):  # checked before anything of size k is built
        raise _fail(number, f"content: {k} records announced, the line is shorter than their heads")
    indexes = struct.unpack_from(f">{k}Q", chunk, _COUNT.size)
    lengths = struct.unpack_from(f">{k}I", chunk, _COUNT.size + 8 * k)
    if k and min(lengths) < _MIN_CONTENT:
        raise _fail(number, f"content: a record shorter than {_MIN_CONTENT} bytes")
    if sum(lengths) != len(chunk) - start:
        raise _fail(
            number,
            f"content: the lengths add up to {sum(lengths)} bytes, the line holds {len(chunk) - start}",
        )
    ends = list(itertools.accumulate(lengths, initial=start))
    return indexes, list(map(chunk.__getitem__, map(slice, ends[:-1], ends[1:])))


def _content_v3(chunk: bytes, number: int, into: dict[int, bytes]) -> None:
    indexes, found = content_columns(chunk, number)
    records = dict(zip(indexes, found, strict=True))
    if len(records) != len(indexes) or any(map(into.__contains__, records)):
        seen: set[int] = set()
        for index in indexes:
            if index in seen or index in into:
                raise _fail(number, f"content: entry {index} is given twice")
            seen.add(index)
    into.update(records)


@dataclass(slots=True)
class _Sections:
    """The binary lines as they are read: entry bytes and listed leaves kept as separate
    columns (joined once at the end), content by index."""

    v3: bool
    next_first: int
    entries: list[bytes | memoryview] = field(default_factory=list)
    leaves: list[bytes | memoryview] = field(default_factory=list)
    content: dict[int, bytes] = field(default_factory=dict)

    def add_entries(self, number: int, first: int | None, decoded: bytes) -> None:
        if first != self.next_first:
            raise _fail(number, f"entries: expected first {self.next_first}, found {first}")
        if len(decoded) % _RECORD:
            raise _fail(number, f"entries: not a whole number of {_RECORD}-byte records")
        k = len(decoded) // _RECORD
        if self.v3:  # k entries, then their k leaves (views: copied once, when joined)
            view = memoryview(decoded)
            self.entries.append(view[: k * ENTRY_SIZE])
            self.leaves.append(view[k * ENTRY_SIZE :])
        else:  # v2: interleaved; two strided passes (no tuple per record)
            self.entries.append(
                b"".join([decoded[i : i + ENTRY_SIZE] for i in range(0, len(decoded), _RECORD)])
            )
            self.leaves.append(
                b"".join([decoded[i : i + 32] for i in range(ENTRY_SIZE, len(decoded), _RECORD)])
            )
        self.next_first += k

    def add_content(self, number: int, decoded: bytes) -> None:
        (_content_v3 if self.v3 else _content_v2)(decoded, number, self.content)


def parse_bundle(data: bytes) -> Bundle:
    """Parse a v3 (or v2) bundle strictly; raises :class:`UnusableInput` for a malformed file."""
    if not data.endswith(b"\n"):
        raise UnusableInput("bundle: expected the file to end with a newline (cut off?)")
    header: HeaderLine | None = None
    sections: _Sections | None = None
    texts: dict[str, str] = {}
    bodies: dict[bytes, bytes] = {}
    names: dict[bytes, tuple[bytes | None, bytes]] = {}
    notes: list[str] = []
    view = memoryview(data)
    for number, start, end in _lines(data):
        bulk = _bulk_line(data, view, start, end) if sections is not None else None
        if bulk is not None and sections is not None:  # read without a JSON parser
            kind, first, encoded = bulk
            decoded = _b64(encoded, number, "data")
            if kind == "content":
                sections.add_content(number, decoded)
            else:
                sections.add_entries(number, first, decoded)
            continue
        line = _line(data[start:end], number)
        if number == 1:
            if not isinstance(line, HeaderLine):
                raise _fail(1, "expected the header first")
            if line.format not in (FORMAT, FORMAT_V2):
                raise _fail(1, f"format: expected {FORMAT} or {FORMAT_V2}, found {line.format!r}")
            header = line
            sections = _Sections(line.format == FORMAT, line.start)
            continue
        assert sections is not None  # line 1 is the header or the file was refused
        if isinstance(line, HeaderLine):
            raise _fail(number, "a second header")
        if isinstance(line, TextLine):
            texts[line.digest.hex()] = "" if text_digest(line.text) == line.digest else "changed"
        elif isinstance(line, BodyLine):
            bodies[line.digest] = line.body.encode()
        elif isinstance(line, NamesLine):
            if line.commitment in names:
                raise _fail(number, f"a second names document {line.commitment.hex()[:16]}…")
            names[line.commitment] = (line.salt, line.doc.encode())
        elif isinstance(line, EntriesLine):
            sections.add_entries(number, line.first, _b64(line.data, number, "data"))
        elif isinstance(line, ContentLine):
            sections.add_content(number, _b64(line.data, number, "data"))
        else:
            notes.append(line.note)
    if header is None or sections is None:
        raise UnusableInput("bundle: empty")
    dropped = header.start
    if len(header.start_hashes) != dropped.bit_count():
        raise _fail(1, f"start_hashes: {dropped} dropped leaves need {dropped.bit_count()}")
    tree = TreeInput(
        origin=header.origin,
        customer=header.customer,
        first_key=header.key,
        entries=b"".join(sections.entries),
        leaves=Hashes(b"".join(sections.leaves)),
        bodies=bodies,
        checkpoints=notes,
        start=dropped,
        start_hashes=list(header.start_hashes),
        content=sections.content,
        names=names,
    )
    return Bundle(tree, _texts_bad(bodies, texts))


def _line(raw: bytes, number: int) -> AnyLine:
    """A line that is not an entries or content line in their fixed form: parsed, its type
    and fields checked, proven to be its own RFC 8785 form, then read into its model."""
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise _fail(number, f"not JSON: {exc}") from exc
    if not isinstance(line, dict):
        raise _fail(number, "expected a JSON object")
    kind = line.get("t")
    if not isinstance(kind, str) or kind not in FIELDS:
        raise _fail(number, f"unknown line type {kind!r}")
    fields = FIELDS[kind]
    if set(line) != fields:
        raise _fail(number, f"fields: expected {sorted(fields)}, found {sorted(line)}")
    # For these lines orjson's sorted output is their RFC 8785 form: member names are fixed
    # ASCII, numbers are integers (bounded by the line's model) and orjson escapes strings exactly as
    # RFC 8785 §3.2.2.2 does (tested); the full serializer is 50x slower.
    if orjson.dumps(line, option=orjson.OPT_SORT_KEYS) != raw:
        raise _fail(number, "not in RFC 8785 canonical form")
    return line_model(kind, line, number)


def _texts_bad(bodies: dict[bytes, bytes], texts: dict[str, str]) -> dict[str, str]:
    """Which texts named by a body are missing or changed (reported at their first entry)."""
    bad: dict[str, str] = {}
    for raw_body in bodies.values():
        try:
            doc = orjson.loads(raw_body)
        except orjson.JSONDecodeError:
            continue  # the proof check names it
        if not isinstance(doc, dict):
            continue
        for lang in ("text_de", "text_en"):
            ref = doc.get(lang)
            if isinstance(ref, str) and texts.get(ref, "missing"):
                bad[ref] = texts.get(ref, "missing")
    return bad
