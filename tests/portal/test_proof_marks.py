"""The ✓ beside an entry's checkpoint stays a proof with the verified notes kept in memory
(``gateway.log.opened_notes``): a stored note changed after it was shown verified is checked
again and shown bad, and one customer's genuine checkpoint put in another customer's log is
bad there. Real portal, real log, the box's own key."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import aiohttp

from gateway.log.stored import note_signature
from tests.portal.box import THEIRS, Box, portal_box

MINE_SEQ = 9  # tests.portal.box: entries 1..10, the odd seqs the customer's, one checkpoint each
THEIRS_SEQ = 10


async def _proof_state(box: Box, client: aiohttp.ClientSession, seq: int) -> str:
    async with client.get(f"{box.url}/entry/{seq}") as response:
        assert response.status == 200
        page = await response.text()
    found = re.search(r'<dd class="(\w+)" id="proof-status">', page)
    assert found is not None, page[-2000:]
    return found.group(1)


async def _download_marks(box: Box, client: aiohttp.ClientSession) -> str:
    async with client.get(f"{box.url}/download") as response:
        assert response.status == 200
        return await response.text()


def _flip_signature(note: str) -> str:
    """The note with one base64 character of the box's signature changed."""
    text, _, lines = note.partition("\n\n")
    first, _, rest = lines.partition("\n")
    name, b64 = first.rsplit(" ", 1)
    position = len(b64) - 4  # inside the signature, clear of the padding
    swapped = "A" if b64[position] != "A" else "B"
    changed = f"{name} {b64[:position]}{swapped}{b64[position + 1 :]}"
    return f"{text}\n\n{changed}\n{rest}"


def _rewrite_checkpoints(db: Path, customer: str, note_for: object) -> None:
    """Replace every checkpoint note of ``customer``'s tree by ``note_for(note)``, with the
    row's signature column made to match, as an operator editing the database would."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            rows = conn.execute(
                "SELECT k.id, k.note FROM checkpoints k JOIN chains c ON c.id = k.chain_id"
                " WHERE c.name = ? AND k.note IS NOT NULL",
                (customer,),
            ).fetchall()
            assert rows
            for checkpoint_id, note in rows:
                new = note_for(note)  # type: ignore[operator]
                conn.execute(
                    "UPDATE checkpoints SET note = ?, signature = ? WHERE id = ?",
                    (new, note_signature(new), checkpoint_id),
                )
    finally:
        conn.close()


def _newest_note(db: Path, customer: str) -> str:
    conn = sqlite3.connect(db)
    try:
        row = conn.execute(
            "SELECT k.note FROM checkpoints k JOIN chains c ON c.id = k.chain_id"
            " WHERE c.name = ? AND k.note IS NOT NULL ORDER BY k.size DESC LIMIT 1",
            (customer,),
        ).fetchone()
    finally:
        conn.close()
    return str(row[0])


async def test_a_note_changed_after_it_was_shown_verified_is_shown_bad(tmp_path: Path) -> None:
    async with portal_box(tmp_path) as box:
        anna = await box.session()
        assert await _proof_state(box, anna, MINE_SEQ) == "ok"
        assert await _proof_state(box, anna, MINE_SEQ) == "ok"  # now from the kept note
        _rewrite_checkpoints(box.config.database_path, "baeckerei-schmidt", _flip_signature)
        assert await _proof_state(box, anna, MINE_SEQ) == "bad"
        assert "checkpoint-bad" in await _download_marks(box, anna)


async def test_red_team_another_customers_verified_checkpoint_is_bad_in_this_log(
    tmp_path: Path,
) -> None:
    """Anna's checkpoint is verified and kept; the same signed bytes stored as the other
    customer's checkpoint do not verify there, and show nothing of hers."""
    async with portal_box(tmp_path) as box:
        anna, huber = await box.session("anna"), await box.session("huber")
        assert await _proof_state(box, anna, MINE_SEQ) == "ok"
        assert await _proof_state(box, huber, THEIRS_SEQ) == "ok"
        hers = _newest_note(box.config.database_path, "baeckerei-schmidt")
        _rewrite_checkpoints(box.config.database_path, THEIRS, lambda _: hers)
        assert await _proof_state(box, huber, THEIRS_SEQ) == "bad"
        download = await _download_marks(box, huber)
        assert "checkpoint-bad" in download and "baeckerei" not in download
        assert await _proof_state(box, anna, MINE_SEQ) == "ok"
