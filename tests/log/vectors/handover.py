"""A customer's log handed over between two instances, written by the real log writer.

The old instance (``gw-test``, the vectors' old key) writes 11 entries, its final
``handing_over`` entry and the checkpoint of size 12. The new instance (``gw-hall-b``, its own
key) continues the same database copy under its own origin: its first entry is the handover
record (index 12), then 6 entries and their checkpoints. ``tests/log/vectors/generate.py`` turns
this into the ``handover-*`` vectors; the record's bytes are ``gateway.log.handovers``'.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson

from gateway.log.bundle import export_customer
from gateway.log.checkpoints import latest_note
from gateway.log.entry import EntryDraft
from gateway.log.handovers import handed_over_draft, handing_over_draft, handover_message
from gateway.log.keys import Signer
from tests.log.conftest import ORIGIN, Log, make_draft

__all__ = ["HANDOVER_SEED", "NEW_BOX", "HandedOver", "handed_over_bundle"]

HANDOVER_SEED = bytes(range(96, 128))
NEW_BOX = "gw-hall-b"
C = "baeckerei-schmidt"
BEFORE = 11  # entries the old instance writes before its final one


def _copy(src: Path, dst: Path) -> None:
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    a.close()
    b.close()


@dataclass(frozen=True)
class HandedOver:
    before: bytes  # the old instance's export before the handover (what a customer kept)
    kept_note: str  # its checkpoint then
    after: bytes  # the new instance's export: the whole history as one tree
    size: int  # the handover record's index (= the old instance's final checkpoint's size)
    old_wrote_on: bytes  # the old instance's export had it written after its final entry
    record: EntryDraft  # the good handover record
    old: Signer
    new: Signer
    old_db: Path  # the old instance's database at its final checkpoint
    work: Path

    def tampered(
        self,
        *,
        sig_old_by: Signer | None = None,
        root: bytes | None = None,
        size: int | None = None,
    ) -> list[dict[str, Any]]:
        """The new instance's history with a changed record, every later checkpoint re-signed
        by the new instance (what a holder of the new key alone can produce). A changed root or
        size is signed by both keys, as two colluding instances could."""
        params = dict(self.record.reason_params)
        old_key = bytes.fromhex(params["old"])
        new_key = bytes.fromhex(params["new"])
        old_signer, new_signer = self.old, self.new
        if root is not None or size is not None:
            params["root"] = (root or bytes.fromhex(params["root"])).hex()
            params["size"] = str(size if size is not None else int(params["size"]))
        message = handover_message(
            params["from"],
            params["to"],
            int(params["size"]),
            bytes.fromhex(params["root"]),
            old_key,
            new_key,
        )
        params["sig_old"] = (sig_old_by or old_signer).sign(message).hex()
        params["sig_new"] = new_signer.sign(message).hex()
        draft = replace(self.record, reason_params=params)
        name = f"tampered-{len(list(self.work.iterdir()))}.db"
        data = _take_over(self.old_db, self.work / name, new_signer, draft)
        return [orjson.loads(line) for line in data.splitlines()]


def _take_over(old_db: Path, path: Path, new: Signer, record: EntryDraft) -> bytes:
    """The new instance continuing ``old_db``'s tree of ``C``: its record, then 6 entries."""
    _copy(old_db, path)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'origin'", (NEW_BOX,))
        conn.execute(
            "INSERT INTO keys (key_id, public, added_at) VALUES (?, ?, 0)",
            (new.key_id, new.public.raw),
        )
    conn.close()
    log = Log(path, new, NEW_BOX)
    log.write([record])
    log.write([make_draft(i, customer=C) for i in range(50, 53)])
    log.write([make_draft(i, customer=C) for i in range(53, 56)])
    log.close()
    return export_customer(path, C)


def handed_over_bundle(old: Signer, new: Signer, work: Path) -> HandedOver:
    old_db = work / "old.db"
    log = Log(old_db, old, ORIGIN)
    log.write([make_draft(i, customer=C) for i in range(6)])
    log.write([make_draft(i, customer=C) for i in range(6, BEFORE)])
    log.write([make_draft(i, customer="metallbau-huber") for i in range(3)])
    before = export_customer(old_db, C)
    kept = latest_note(log.conn, C)
    assert kept is not None
    at = make_draft(BEFORE).at
    new_origin = f"{NEW_BOX}/{C}"
    log.write([handing_over_draft(C, new_origin, new.public, at)])
    size, root = log.writer.head(C)
    log.close()
    old_origin = f"{ORIGIN}/{C}"
    message = handover_message(old_origin, new_origin, size, root, old.public.raw, new.public.raw)
    record = handed_over_draft(
        C,
        at + timedelta(seconds=1),
        old_origin=old_origin,
        new_origin=new_origin,
        size=size,
        root=root,
        old_key=old.public,
        sig_old=old.sign(message),
        new=new,
    )
    after = _take_over(old_db, work / "new.db", new, record)

    wrote_on = work / "wrote-on.db"
    _copy(old_db, wrote_on)
    log = Log(wrote_on, old, ORIGIN)
    log.write([make_draft(i, customer=C) for i in range(60, 63)])
    log.close()
    return HandedOver(
        before=before,
        kept_note=kept,
        after=after,
        size=size,
        old_wrote_on=export_customer(wrote_on, C),
        record=record,
        old=old,
        new=new,
        old_db=old_db,
        work=work,
    )
