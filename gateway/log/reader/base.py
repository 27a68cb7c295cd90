"""The reader's ground floor: its read-only connection, the customer restriction, names, bodies and
the filters that every query of ``gateway.log.reader`` stands on.

Bound to a customer, ``_own`` and ``where`` put the restriction to that customer's chain into every
statement's SQL, whatever filter the caller passes; the other reader modules build on these two and
never write their own restriction.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import orjson

from gateway.errors import LogError
from gateway.locale import tr
from gateway.log.chain import GATEWAY_CHAIN
from gateway.log.documents import NamesDocument
from gateway.log.entry import OUTCOMES, at_from_us
from gateway.log.keys import PublicKey
from gateway.log.names import joined
from gateway.log.opened_notes import OpenedNotes
from gateway.log.results import Body, EntryFacts, EntryFilter, EntryLine, EntryRow, Match

__all__ = ["LINE_COLUMNS", "OUTCOME_NAMES", "ReaderBase", "entry_line", "row_passes"]

OUTCOME_NAMES = {v: k for k, v in OUTCOMES.items()}
LINE_COLUMNS = "seq, at, chain_id, idx, body_id, device_id, recipient_id, outcome"

# What an entry whose names document was erased says in place of its explanation.
_ERASED = {lang: tr(lang, "log.names_erased") for lang in ("de", "en")}


def _fold(value: object) -> str | None:
    return None if value is None else str(value).casefold()


def entry_line(r: Sequence[Any], hit: bool = False) -> EntryLine:
    """An entry row selected as ``LINE_COLUMNS`` (``hit``: it matches the find filter)."""
    return EntryLine(
        seq=int(r[0]),
        at_us=int(r[1]),
        chain_id=int(r[2]),
        index=int(r[3]),
        body_id=int(r[4]),
        device_id=None if r[5] is None else int(r[5]),
        recipient_id=None if r[6] is None else int(r[6]),
        outcome=OUTCOME_NAMES.get(r[7]),
        hit=hit,
    )


def row_passes(
    row: EntryRow,
    *,
    customer: str | None = None,
    device: str | None = None,
    recipient: str | None = None,
    outcome: str | None = None,
    text: str | None = None,
) -> bool:
    """Whether ``row`` passes the filters ``ReaderBase.filter_for`` turns into SQL, tested on a
    row already read (the portal's live feed reads a customer's new rows once and each stream
    keeps those its filters pass). Exact ids; ``text`` found in either explanation, casefolded:
    the same tests as the SQL's (tests/log/test_reader.py compares the two on every filter)."""
    if customer is not None and row.customer != customer:
        return False
    if device is not None and row.device != device:
        return False
    if recipient is not None and row.recipient != recipient:
        return False
    if outcome is not None and row.outcome != outcome:
        return False
    if text is not None:
        needle = text.casefold()
        return needle in row.text_de.casefold() or needle in row.text_en.casefold()
    return True


class ReaderBase:
    """The connection, the customer restriction, names, bodies and filters every query uses."""

    def __init__(self, conn: sqlite3.Connection, path: Path, customer: str | None) -> None:
        self._conn = conn
        self.path = path
        self.customer = customer
        self.origin = ""
        self._bodies: dict[int, Body] = {}
        self._last_body = 0
        self._atoms: dict[int, str] = {}
        self._keys: dict[bytes, PublicKey] = {}
        self._chains: dict[int, str] = {}
        # Checkpoint notes this reader has verified, by their exact text and keys: a viewer's
        # pages show the same checkpoint's ✓ again and again (bounded; a failure is not kept).
        self._notes = OpenedNotes()

    @classmethod
    def open(cls, path: str | Path, *, customer: str | None = None) -> Self:
        path = Path(path)
        if not path.exists():
            raise LogError(f"{path}: no log database here (is the path right?)")
        uri = f"{path.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.create_function("fold", 1, _fold, deterministic=True)
            conn.execute("PRAGMA query_only=ON")
            row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        except sqlite3.Error as exc:
            raise LogError(f"{path}: cannot read the log database read-only: {exc}") from exc
        reader = cls(conn, path, customer)
        reader.origin = "" if row is None else str(row[0])
        return reader

    @classmethod
    def over(cls, conn: sqlite3.Connection, path: Path, *, customer: str | None = None) -> Self:
        """Read on a caller's connection, inside its transaction (an erasure counts what it is
        about to delete in the same transaction that deletes it). Not closed by the reader."""
        reader = cls(conn, path, customer)
        row = conn.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        reader.origin = "" if row is None else str(row[0])
        return reader

    def close(self) -> None:
        self._conn.close()

    # -- the customer restriction ------------------------------------------------------
    def _own(self, column: str = "chain_id") -> tuple[str, list[object]]:
        """The SQL condition restricting ``column`` (a chain id) to the bound customer."""
        if self.customer is None:
            return "1", []
        return f"{column} = (SELECT id FROM chains WHERE name = ?)", [self.customer]

    def _mine(self, doc: Mapping[str, object]) -> bool:
        return self.customer is None or (doc.get("customer") or GATEWAY_CHAIN) == self.customer

    # -- names, bodies, texts ----------------------------------------------------------
    def chain_names(self) -> dict[int, str]:
        own, params = self._own("id")
        return {
            int(i): str(n)
            for i, n in self._conn.execute(f"SELECT id, name FROM chains WHERE {own}", params)
        }

    def chain_name(self, chain_id: int) -> str | None:
        """One chain's name (None: unknown, or not this reader's). Chains are never renamed nor
        deleted, so a name once read is kept; an id not seen yet reads the table again (a new
        customer's first entry), which a page of rows then costs once, not once per row."""
        found = self._chains.get(chain_id)
        if found is None:
            self._chains = self.chain_names()
            found = self._chains.get(chain_id)
        return found

    def chain_id(self, customer: str) -> int | None:
        """The id of ``customer``'s chain (None: no entry of theirs yet, or not this reader's)."""
        if self.customer is not None and customer != self.customer:
            return None
        row = self._conn.execute("SELECT id FROM chains WHERE name = ?", (customer,)).fetchone()
        return None if row is None else int(row[0])

    def atom(self, atom_id: int | None) -> str | None:
        """A device or recipient name by id. Bound to a customer, only a name one of that
        customer's entries refers to: another customer's id resolves to None, as an unknown
        one does (unbound, an unknown id reads ``#id``)."""
        if atom_id is None:
            return None
        found = self._atoms.get(atom_id)
        if found is not None:
            return found
        if self.customer is None:
            self._atoms = {
                int(i): str(v) for i, v in self._conn.execute("SELECT id, value FROM atoms")
            }
            return self._atoms.get(atom_id, f"#{atom_id}")
        if self._owns_atom(atom_id):
            row = self._conn.execute("SELECT value FROM atoms WHERE id = ?", (atom_id,)).fetchone()
            if row is not None:
                self._atoms[atom_id] = str(row[0])
                return str(row[0])
        return None

    def _owns_atom(self, atom_id: int) -> bool:
        # Both columns are indexed; the bound customer's chain filters what the index finds.
        own, params = self._own()
        row = self._conn.execute(
            f"SELECT EXISTS (SELECT 1 FROM entries WHERE device_id = ? AND {own})"
            f" OR EXISTS (SELECT 1 FROM entries WHERE recipient_id = ? AND {own})",
            [atom_id, *params, atom_id, *params],
        ).fetchone()
        return bool(row[0])

    def atom_id(self, value: str) -> int | None:
        """A device or recipient name's id; bound to a customer, only a name of theirs."""
        row = self._conn.execute("SELECT id FROM atoms WHERE value = ?", (value,)).fetchone()
        if row is None or (self.customer is not None and not self._owns_atom(int(row[0]))):
            return None
        return int(row[0])

    def texts(self, digests: Iterable[bytes]) -> dict[bytes, str]:
        """Explanation texts by digest (texts are shared wording, not any customer's data)."""
        listed = list(dict.fromkeys(digests))
        found: dict[bytes, str] = {}
        for start in range(0, len(listed), 500):
            chunk = listed[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for digest, text in self._conn.execute(
                f"SELECT digest, text FROM texts WHERE digest IN ({marks})", chunk
            ):
                found[bytes(digest)] = str(text)
        return found

    def names(self, commitments: Iterable[bytes]) -> dict[bytes, NamesDocument]:
        """Names documents by commitment, the bound customer's only (absent: erased)."""
        listed = list(dict.fromkeys(commitments))
        own, params = self._own()
        found: dict[bytes, NamesDocument] = {}  # as names_of wrote them
        if not listed:  # version 1 bodies only (the table may not exist in such a log)
            return found
        for start in range(0, len(listed), 500):
            chunk = listed[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for commitment, doc in self._conn.execute(
                f"SELECT commitment, doc FROM names WHERE commitment IN ({marks}) AND {own}",
                [*chunk, *params],
            ):
                found[bytes(commitment)] = orjson.loads(doc)
        return found

    def new_bodies(self) -> list[Body]:
        """Bodies stored since the last call (the bound customer's only), joined with their
        names documents (version 2) or texts (version 1) for display."""
        rows = self._conn.execute(
            "SELECT id, digest, doc FROM bodies WHERE id > ? ORDER BY id", (self._last_body,)
        ).fetchall()
        if not rows:
            return []
        self._last_body = max(self._last_body, int(rows[-1][0]))
        docs = [(int(i), bytes(d), orjson.loads(raw)) for i, d, raw in rows]
        docs = [(i, d, doc) for i, d, doc in docs if self._mine(doc)]
        names = self.names(bytes.fromhex(doc["names"]) for _, _, doc in docs if "names" in doc)
        wanted = [
            bytes.fromhex(doc[f"text_{lang}"])
            for _, _, doc in docs
            for lang in ("de", "en")
            if doc.get(f"text_{lang}")
        ]
        texts = self.texts(wanted)
        out = []
        for body_id, digest, stored in docs:
            doc = stored
            if "names" in stored:
                doc, body_texts = joined(stored, names.get(bytes.fromhex(stored["names"])), _ERASED)
            else:
                body_texts = {
                    lang: texts.get(bytes.fromhex(doc.get(f"text_{lang}") or ""), "")
                    for lang in ("de", "en")
                }
            body = Body(id=body_id, digest=digest, doc=doc, texts=body_texts)
            self._bodies[body_id] = body
            out.append(body)
        return out

    def body(self, body_id: int) -> Body:
        found = self._bodies.get(body_id)
        if found is None:
            self.new_bodies()
            found = self._bodies.get(body_id)
            if found is None:
                raise LogError(
                    f"{self.path}: an entry refers to body {body_id}, which is not stored (or not this customer's); run `einblick verify`"
                )
        return found

    def bodies(self) -> list[Body]:
        """Every body of this reader's entries known so far (after taking in new ones)."""
        self.new_bodies()
        return list(self._bodies.values())

    # -- entries -----------------------------------------------------------------------
    def _match(self, table: str, matches: Sequence[Match]) -> tuple[str, list[object]]:
        column = "name" if table == "chains" else "value"
        ors: list[str] = []
        params: list[object] = []
        for m in matches:
            ors.append(
                f"(instr(fold({column}), ?) > 0 OR {column} IN (SELECT value FROM json_each(?)))"
            )
            params += [m.contains, orjson.dumps(list(m.exactly)).decode()]
        return f"SELECT id FROM {table} WHERE " + " OR ".join(ors), params

    def where(self, flt: EntryFilter | None, *, own: bool = True) -> tuple[str, list[object]]:
        """SQL conditions on ``entries`` for ``flt``, always within the bound customer."""
        clauses: list[str] = []
        params: list[object] = []
        if own and self.customer is not None:
            sql, p = self._own()
            clauses.append(sql)
            params += p
        if flt is not None:
            for column, table, matches in (
                ("device_id", "atoms", flt.devices),
                ("recipient_id", "atoms", flt.recipients),
                ("chain_id", "chains", flt.customers),
            ):
                if matches:
                    sql, p = self._match(table, matches)
                    clauses.append(f"{column} IN ({sql})")
                    params += p
            if flt.outcomes:
                # Our own small integers, written into the SQL rather than bound: SQLite uses
                # the partial index on withheld entries (migration 9) only for a query whose
                # WHERE says ``outcome = 3`` itself.
                codes = sorted({OUTCOMES.get(o, -1) for o in flt.outcomes})
                clauses.append(
                    f"outcome = {codes[0]}"
                    if len(codes) == 1
                    else f"outcome IN ({','.join(str(c) for c in codes)})"
                )
            if flt.body_ids is not None:
                clauses.append("body_id IN (SELECT value FROM json_each(?))")
                params.append(orjson.dumps(sorted(flt.body_ids)).decode())
        return (" AND ".join(clauses) or "1"), params

    # -- one entry ---------------------------------------------------------------------
    def entry(self, seq: int) -> EntryFacts | None:
        """Everything stored about entry ``seq``; None if absent or not this reader's."""
        own, params = self._own("e.chain_id")
        found = self._conn.execute(
            "SELECT e.seq, e.at, e.chain_id, e.idx, e.body_id, e.device_id, e.recipient_id,"
            " e.outcome, e.source, e.commitment, e.hash, ch.name, c.seq IS NOT NULL, c.payload, t.topic"
            " FROM entries e JOIN chains ch ON ch.id = e.chain_id"
            " LEFT JOIN content c ON c.seq = e.seq LEFT JOIN topics t ON t.id = c.topic_id"
            f" WHERE e.seq = ? AND {own}",
            [seq, *params],
        ).fetchone()
        if found is None:
            return None
        return EntryFacts(
            line=entry_line(found),
            chain=str(found[11]),
            source=bytes(found[8]),
            commitment=None if found[9] is None else bytes(found[9]),
            entry_hash=bytes(found[10]),
            content_held=bool(found[12]),
            content=None if found[13] is None else bytes(found[13]),
            topic=None if found[14] is None else str(found[14]),
        )

    # -- the typed views of the async API (tests, front-ends) ----------------------------
    def filter_for(
        self,
        *,
        customer: str | None = None,
        device: str | None = None,
        recipient: str | None = None,
        outcome: str | None = None,
        text: str | None = None,
    ) -> EntryFilter:
        """Exact-id filters, and ``text`` found in either explanation (case-insensitive)."""
        body_ids = None
        if text is not None:
            needle = text.casefold()
            body_ids = frozenset(
                b.id for b in self.bodies() if any(needle in t.casefold() for t in b.texts.values())
            )
        return EntryFilter(
            devices=() if device is None else (Match(exactly=(device,)),),
            recipients=() if recipient is None else (Match(exactly=(recipient,)),),
            customers=() if customer is None else (Match(exactly=(customer,)),),
            outcomes=() if outcome is None else (outcome,),
            body_ids=body_ids,
        )

    def row(self, line: EntryLine) -> EntryRow:
        body = self.body(line.body_id)
        return EntryRow(
            seq=line.seq,
            at=at_from_us(line.at_us),
            customer=self.chain_name(line.chain_id) or f"#{line.chain_id}",
            index=line.index,
            kind=body.kind,
            device=self.atom(line.device_id),
            recipient=self.atom(line.recipient_id),
            outcome=line.outcome,
            text_de=body.texts["de"],
            text_en=body.texts["en"],
        )
