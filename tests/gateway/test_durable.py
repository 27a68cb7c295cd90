"""A note replaced durably (gateway/durable.py): the new bytes whole, owner-only, no temporary
file left; a replacement that fails leaves the old file as it was."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from gateway.durable import replace_durably


def test_the_file_holds_the_new_bytes_owner_only_and_nothing_else_is_left(tmp_path: Path) -> None:
    path = tmp_path / "taken-werk-a.json"
    path.write_bytes(b'{"old": true}')
    replace_durably(path, b'{"copies": []}')
    assert path.read_bytes() == b'{"copies": []}'
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken-werk-a.json"]


def test_a_replacement_that_cannot_be_made_leaves_the_old_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "moved-werk-a.json"
    path.write_bytes(b"old")
    (tmp_path / ".moved-werk-a.json.tmp").mkdir()  # the temporary cannot be written
    with pytest.raises(OSError):
        replace_durably(path, b"new")
    assert path.read_bytes() == b"old"
