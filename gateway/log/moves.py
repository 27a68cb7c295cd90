"""Which customers' logs this instance handed over, or took over (``einblick handover``).

The handover entries in the log are the record of a move (``gateway/log/SPEC.md`` §4): a tree
whose last entry is the old instance's ``handing_over`` entry is closed here — the customer now
belongs to the instance it names, whatever the ``cluster:`` section says — and a tree holding a
handover record to this instance's origin, not closed since, is this instance's. Reading the
logs rather than a file means a restart, a stale copy of a file or a lost edit can never make
two instances write one customer's tree: the signed entries decide.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from gateway.errors import LogError
from gateway.log.handovers import HANDED_OVER, HANDING_OVER
from gateway.log.leaf import tree_origin

__all__ = ["Moves", "read_moves"]


@dataclass(frozen=True, slots=True)
class Moves:
    """``handed_out``: customer -> the instance its log went to; ``taken_over``: customers whose
    log this instance continues."""

    handed_out: dict[str, str] = field(default_factory=dict)
    taken_over: frozenset[str] = frozenset()


def _params(raw: bytes) -> tuple[object, dict[str, object]]:
    doc = orjson.loads(raw)
    if not isinstance(doc, dict):
        return None, {}
    params = doc.get("reason_params")
    return doc.get("reason"), params if isinstance(params, dict) else {}


def read_moves(db_path: Path, instance: str) -> Moves:
    """The moves recorded in the log database at ``db_path`` of ``instance`` (none without one)."""
    if not db_path.is_file():
        return Moves()
    try:
        conn = sqlite3.connect(Path(db_path).absolute().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise LogError(f"{db_path}: cannot read the log to see handovers: {exc}") from exc
    try:
        last = conn.execute(
            "SELECT c.name, b.doc FROM chains c"
            " JOIN entries e ON e.chain_id = c.id"
            " AND e.idx = (SELECT max(idx) FROM entries WHERE chain_id = c.id)"
            " JOIN bodies b ON b.id = e.body_id"
        ).fetchall()
        # a handover record's body names its reason; bodies are few (each stored once)
        records = conn.execute(
            "SELECT doc FROM bodies WHERE instr(doc, ?) > 0", (f'"reason":"{HANDED_OVER}"',)
        ).fetchall()
    except sqlite3.Error as exc:
        raise LogError(f"{db_path}: cannot read the log to see handovers: {exc}") from exc
    finally:
        conn.close()
    handed_out: dict[str, str] = {}
    for name, doc in last:
        reason, params = _params(bytes(doc))
        if reason == HANDING_OVER:
            handed_out[str(name)] = str(params.get("to", "")).split("/", 1)[0]
    taken: set[str] = set()
    for (doc,) in records:
        reason, params = _params(bytes(doc))
        customer = str(orjson.loads(bytes(doc)).get("customer"))
        if reason == HANDED_OVER and params.get("to") == tree_origin(instance, customer):
            taken.add(customer)
    return Moves(handed_out, frozenset(taken - set(handed_out)))


def stored_origin_at(
    conn: sqlite3.Connection, box_origin: str, name: str, size: int, claimed: str
) -> str:
    """The origin a stored checkpoint of ``size`` of the tree ``name`` is signed under: before a
    handover this tree took over, the old instance's (a viewer's ✓ beside an adopted checkpoint;
    ``einblick verify`` checks the records themselves). A note ``claimed`` under this box's own
    origin needs no search (the common case: the bodies are read only for another origin)."""
    own = tree_origin(box_origin, name)
    if claimed == own:
        return own
    records: list[tuple[int, str]] = []
    for (doc,) in conn.execute(
        "SELECT doc FROM bodies WHERE instr(doc, ?) > 0", (f'"reason":"{HANDED_OVER}"',)
    ):
        value = orjson.loads(bytes(doc))
        if not isinstance(value, dict) or value.get("customer") != name:
            continue
        reason, params = _params(bytes(doc))
        if reason == HANDED_OVER and str(params.get("size", "")).isdigit():
            records.append((int(str(params["size"])), str(params.get("from"))))
    for index, before in sorted(records):
        if size <= index:
            return before
    return own
