"""A v3 bundle file read by the kind of its lines, for the streaming proof.

``gateway.log.bundle_stream`` never holds a bundle whole. It reads the file once for
everything but the bulk lines (:func:`read_meta`: header, texts, bodies, names documents, and
where the ``entries``, ``content`` and ``checkpoint`` lines lie), then walks it with one cursor
per kind (:func:`lines_of`), each line checked in its fixed RFC 8785 form as the whole-file
reader (``gateway.log.bundle_lines``) checks it, whose line parsers these are. Memory: one
line at a time, and what :class:`Meta` keeps (which grows with distinct explanations and names
documents, not with entries).

Anything unusual -- a v2 file, a line out of its fixed form, content out of index order,
checkpoints out of size order -- is :class:`NotProven`: the whole-file checker takes the file
then, and accepts or names what is wrong.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO

import orjson

from gateway.errors import LogError
from gateway.log.bundle_lines import (
    FORMAT,
    _b64,
    _bulk_line,
    _line,
    content_columns,
)
from gateway.log.bundle_models import BodyLine, CheckpointLine, HeaderLine, NamesLine, TextLine
from gateway.log.chain import text_digest
from gateway.log.note import Checkpoint, NoteError

__all__ = [
    "Content",
    "Meta",
    "NotProven",
    "Opener",
    "bulk_data",
    "checkpoint_notes",
    "content_lines",
    "lines_of",
    "read_meta",
]

Opener = Callable[[], IO[bytes]]  # a new reader of the bundle, at its start, each call
_BULK = b'{"data":"'


class NotProven(LogError):
    """The streaming reader could not prove the bundle good (the whole-file checker decides)."""


@dataclass(slots=True)
class Meta:
    """Pass 0: everything but the bulk lines, and where the bulk lines are."""

    header: HeaderLine
    bodies: dict[bytes, bytes] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # text digest -> "" or why it is bad
    names: dict[bytes, tuple[bytes | None, bytes]] = field(default_factory=dict)
    spans: dict[str, list[int]] = field(default_factory=dict)  # kind -> [first offset, end]
    lines: dict[str, int] = field(default_factory=dict)  # kind -> number of its first line


def read_meta(reader: IO[bytes]) -> Meta:
    meta: Meta | None = None
    offset = 0
    last = b""
    for number, raw in enumerate(reader, 1):
        end = offset + len(raw)
        last = raw
        kind = _bulk_kind(raw) if meta is not None else None
        if kind is None:
            line = _line(raw[:-1] if raw.endswith(b"\n") else raw, number)
            kind = line.t
            if meta is None:
                if not isinstance(line, HeaderLine) or line.format != FORMAT:
                    raise NotProven("not a v3 bundle")
                meta = Meta(line)
            elif isinstance(line, TextLine):
                meta.texts[line.digest.hex()] = (
                    "" if text_digest(line.text) == line.digest else "changed"
                )
            elif isinstance(line, BodyLine):
                meta.bodies[line.digest] = line.body.encode()
            elif isinstance(line, NamesLine):
                if line.commitment in meta.names:
                    raise NotProven("a names document given twice")
                meta.names[line.commitment] = (line.salt, line.doc.encode())
            elif isinstance(line, CheckpointLine):
                pass  # read again, in size order, by checkpoint_notes
            else:
                raise NotProven(f"line {number}: a {kind} line outside its fixed form")
        if meta is not None and kind != "header":
            span = meta.spans.setdefault(kind, [offset, end])
            span[1] = end
            meta.lines.setdefault(kind, number)
        offset = end
    if meta is None or not last.endswith(b"\n"):
        raise NotProven("empty, or not ending with a newline")
    return meta


def _bulk_kind(raw: bytes) -> str | None:
    if not raw.startswith(_BULK):
        return None
    found = _bulk_line(raw, memoryview(raw), 0, len(raw) - 1)
    if found is None or not raw.endswith(b"\n"):
        raise NotProven("an entries or content line outside its fixed form")
    return found[0]


def lines_of(opener: Opener, meta: Meta, kind: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of every line of ``kind``, read from its span of the file."""
    span = meta.spans.get(kind)
    if span is None:
        return
    number = meta.lines[kind]
    with opener() as reader:
        reader.seek(span[0])
        offset = span[0]
        for raw in reader:
            if offset >= span[1]:
                return
            offset += len(raw)
            if kind in ("entries", "content"):
                if _bulk_kind(raw) == kind:
                    yield number, raw
            elif raw.startswith(b'{"note":'):
                yield number, raw
            number += 1


def bulk_data(number: int, raw: bytes) -> tuple[int | None, bytes]:
    found = _bulk_line(raw, memoryview(raw), 0, len(raw) - 1)
    if found is None:  # lines_of yields only lines in the fixed form: the file changed
        raise NotProven(f"line {number} changed while it was read")
    return found[1], _b64(found[2], number, "data")


def content_lines(opener: Opener, meta: Meta) -> Iterator[tuple[Sequence[int], list[bytes]]]:
    """The held content line by line, (indexes, records), the indexes strictly increasing
    through the file (else doubt: the whole-file checker takes any order)."""
    previous = -1
    for number, raw in lines_of(opener, meta, "content"):
        _first, chunk = bulk_data(number, raw)
        indexes, records = content_columns(chunk, number)
        if indexes and (
            indexes[0] <= previous
            or list(indexes) != sorted(indexes)
            or len(set(indexes)) != len(indexes)
        ):
            raise NotProven("content not in index order")
        if indexes:
            previous = indexes[-1]
            yield indexes, records


def checkpoint_notes(opener: Opener, meta: Meta) -> Iterator[tuple[Checkpoint, str]]:
    """The checkpoint notes in the file's order, which must be by size (else doubt)."""
    previous = -1
    for _number, raw in lines_of(opener, meta, "checkpoint"):
        note = str(orjson.loads(raw)["note"])
        text = note[: note.find("\n\n") + 1] if "\n\n" in note else note
        try:
            cp = Checkpoint.parse(text)
        except NoteError as exc:
            raise NotProven("a checkpoint unreadable") from exc
        if cp.size < previous:
            raise NotProven("checkpoints not by size")
        previous = cp.size
        yield cp, note


class Content:
    """The content records in index order, taken a line of entries at a time."""

    __slots__ = ("_indexes", "_it", "_pos", "_records")

    def __init__(self, lines: Iterator[tuple[Sequence[int], list[bytes]]]) -> None:
        self._it = lines
        self._indexes: Sequence[int] = ()
        self._records: list[bytes] = []
        self._pos = 0

    def take(self, end: int) -> tuple[Sequence[int], list[bytes]]:
        """Every record with an index below ``end`` not yet taken."""
        indexes: list[int] = []
        records: list[bytes] = []
        while True:
            if self._pos == len(self._indexes):
                found = next(self._it, None)
                if found is None:
                    return indexes, records
                self._indexes, self._records = found
                self._pos = 0
            upto = bisect.bisect_left(self._indexes, end, self._pos)
            indexes += self._indexes[self._pos : upto]
            records += self._records[self._pos : upto]
            self._pos = upto
            if upto < len(self._indexes):
                return indexes, records

    def done(self) -> bool:
        return self._pos == len(self._indexes) and next(self._it, None) is None
