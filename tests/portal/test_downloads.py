"""The files a customer takes home are the ones the download page's commands name: the
checkpoint's file name on the page's ``--since`` command is the name the file arrives under,
also in a log whose tree starts after a sealed 0.1.0 chain (there the note counts the tree's
entries, the log's rows count the chain's too)."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

from tests.portal.box import MINE, portal_box


def _seal_a_chain_below(db: Path, customer: str, sealed: int) -> None:
    """Make the customer's checkpoint rows count ``sealed`` entries of an older chain below the
    tree, as in a log upgraded from 0.1.0 (``checkpoints.size`` = ``trees.base`` + the note's
    tree size)."""
    conn = sqlite3.connect(db)
    try:
        with conn:
            conn.execute(
                "UPDATE checkpoints SET size = size + ?"
                " WHERE chain_id = (SELECT id FROM chains WHERE name = ?)",
                (sealed, customer),
            )
    finally:
        conn.close()


async def test_the_checkpoint_arrives_under_the_name_the_since_command_uses(
    tmp_path: Path,
) -> None:
    async with portal_box(tmp_path) as box:
        _seal_a_chain_below(box.config.database_path, MINE, 100)
        anna = await box.session()
        async with anna.get(box.url + "/download?lang=en") as response:
            page = await response.text()
        since = re.search(r'id="verify-since">[^<]*--since (\S+)</pre>', page)
        assert since is not None, page
        async with anna.get(box.url + "/checkpoint") as response:
            assert response.status == 200
            disposition = response.headers["Content-Disposition"]
            note = await response.text()
        assert disposition == f'attachment; filename="{since.group(1)}"'
        assert since.group(1) == f"einblick-{MINE}-105.checkpoint"
        assert note.splitlines()[1] == "5"  # the note itself: the tree's five entries
