"""An erasure on the new instance reaches the old instance's copy of a handed-over customer
(gateway/operations/old_copies.py), against running instances behind a real Mosquitto: with the
old instance running, the copy goes before the erasure answers; with it stopped, the erasure
names the copy as pending — in its signed entry, its answer and the command's output — and the
copy goes at the old instance's next start. Never "erased" while a copy holds the content."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.log.reader import Reader
from gateway.log.schema import ensure_schema
from gateway.operations import handover_model as ops
from gateway.operations import old_copies
from gateway.operations.control import ask, request
from gateway.operations.moved import Leftover, write_note
from gateway.operations.old_copies import (
    OldCopy,
    TakenFrom,
    note_take,
    reach_old_copies,
    read_taken,
)
from tests.faults.cluster_site import ClusterSite
from tests.gateway.test_cluster_view import cluster_block, instance
from tests.gateway.test_handover import CUSTOMERS, LISTED, MOVED, REPO, close_for_move
from tests.gateway.test_moved import NAME, left, on_disk, payloads, started


@contextlib.asynccontextmanager
async def taken_not_cleaned(tmp_path: Path) -> AsyncIterator[ClusterSite]:
    """Both instances running; the move of werk-a went as far as the take, and the command
    stopped before it asked hall-a to remove its copy. The site torn down after."""
    site = ClusterSite(tmp_path, ("hall-a", "hall-b"), CUSTOMERS, LISTED)
    try:
        await started(site)
        await _take(site)
        yield site
    finally:
        await site.teardown()


async def _take(site: ClusterSite) -> None:
    old, new = site.config("hall-a"), site.config("hall-b")
    released = await close_for_move(site, target_db=str(new.database_path))
    await ask(
        new.control_socket,
        ops.HANDOVER_TAKE,
        ops.TakeRequest(
            closed=released.closed,
            source_db=str(old.database_path),
            source_socket=str(old.control_socket),
        ),
        timeout=60,
    )
    assert left(old.database_path) > 0
    (copy,) = (await site.status("hall-a"))["handovers"]
    assert (copy["customer"], copy["kind"]) == (MOVED, "copy")


def entry_text(db: Path, seq: int) -> str:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return Reader.over(conn, db).detail(seq).row.text_en
    finally:
        conn.close()


async def test_an_erasure_on_the_new_instance_removes_the_old_copy_first(tmp_path: Path) -> None:
    async with taken_not_cleaned(tmp_path) as site:
        old, new = site.config("hall-a"), site.config("hall-b")
        sent = payloads(old.database_path)
        assert sent and all(on_disk(old.database_path, p) for p in sent)
        answer = await request(
            new.control_socket, "forget", 90.0, customer=MOVED, device="press-1", by=NAME
        )
        assert answer["copies_pending"] == []
        assert left(old.database_path) == 0
        assert not any(on_disk(old.database_path, p) for p in sent)
        assert "copy" not in entry_text(new.database_path, int(str(answer["entry_seq"])))
        # nothing left to reach: the note stays, listing none, as the proof of it
        assert read_taken(new.data_path, MOVED) == TakenFrom(customer=MOVED, copies=[])
        assert (await site.status("hall-a"))["handovers"] == []
        assert await reach_old_copies(new, MOVED) == ()
        # hall-b's log says it took werk-a over: without the note, where the copy went is not
        # known, so it is never taken for "no copy"
        (new.data_path / f"taken-{MOVED}.json").unlink()
        (unknown,) = await reach_old_copies(new, MOVED)
        assert unknown.instance == "(unknown)"
        assert unknown.why == (
            "unknown old instance: no note of where the copy is; see einblick status on the "
            "instance it came from"
        )


async def test_an_old_copy_out_of_reach_is_named_pending_until_its_instance_starts(
    tmp_path: Path,
) -> None:
    async with taken_not_cleaned(tmp_path) as site:
        old, new = site.config("hall-a"), site.config("hall-b")
        await site.kill("hall-a")
        sent = payloads(old.database_path)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway",
            "forget",
            "--customer",
            MOVED,
            "--device",
            "press-1",
            "--by",
            NAME,
            "--config",
            str(site.configs["hall-b"]),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        said = out.decode()
        assert "not erased yet: the copy instance hall-a keeps after a handover" in said, said
        assert "hall-a is not running; it removes the copy when it next starts" in said
        assert "OLD COPY" in said
        # the signed entry says it too, and the copy is still there: nothing claimed it
        seq = int(said.split("signed erasure entry ")[1].split(";")[0])
        assert "instance hall-a keeps after a handover" in entry_text(new.database_path, seq)
        assert left(old.database_path) > 0 and all(on_disk(old.database_path, p) for p in sent)
        (kept,) = read_taken(new.data_path, MOVED).copies  # type: ignore[union-attr]
        assert kept.instance == "hall-a"

        # Asked later (the portal, einblick erasures), the erasure still says the copy is held.
        listed = await request(new.control_socket, "erasures", 10.0, customer=MOVED)
        held = [c["instance"] for e in listed["erasures"] for c in e["copies_pending"]]
        assert held == ["hall-a"], listed
        shown = await asyncio.create_subprocess_exec(
            *(sys.executable, "-m", "gateway", "erasures", "--customer", MOVED),
            *("--config", str(site.configs["hall-b"])),
            cwd=REPO,
            stdout=asyncio.subprocess.PIPE,
        )
        text = (await shown.communicate())[0].decode()
        assert "not erased yet: the copy instance hall-a keeps (" in text, text

        await site.start("hall-a")  # its clean-up at start removes the copy
        assert left(old.database_path) == 0
        assert not any(on_disk(old.database_path, p) for p in sent)
        # ... and, as of now, nothing is held: the same erasure is complete, looked at read-only
        listed = await request(new.control_socket, "erasures", 10.0, customer=MOVED)
        assert [e["copies_pending"] for e in listed["erasures"]] == [[]], listed
        assert read_taken(new.data_path, MOVED) is not None  # looking changed nothing
        # the next erasure finds nothing left and forgets the note
        answer = await request(new.control_socket, "forget", 90.0, customer=MOVED, by=NAME)
        assert answer["copies_pending"] == []
        assert read_taken(new.data_path, MOVED) == TakenFrom(customer=MOVED, copies=[])


def test_a_second_move_carries_the_first_old_copy_along(tmp_path: Path) -> None:
    """werk-a went from hall-a to hall-b, then on to hall-c before hall-a cleaned up: hall-c's
    note names both copies, so its erasures reach hall-a's too."""
    block = cluster_block({"hall-a": MOVED})
    b, c = (load_config(instance(tmp_path, n, block)) for n in ("hall-b", "hall-c"))
    for config in (b, c):
        config.data_path.mkdir(parents=True, exist_ok=True)
    first = OldCopy(
        instance="hall-a",
        db="/srv/a/einblick.db",
        socket="/srv/a/control.sock",
        to="hall-b",
        target_db=str(b.database_path),
    )
    (b.data_path / f"taken-{MOVED}.json").write_bytes(
        TakenFrom(customer=MOVED, copies=[first]).model_dump_json().encode()
    )
    note_take(c, MOVED, "hall-b", str(b.database_path), str(b.control_socket))
    taken = read_taken(c.data_path, MOVED)
    assert taken is not None
    assert [(x.instance, x.to) for x in taken.copies] == [
        ("hall-b", "hall-c"),
        ("hall-a", "hall-b"),
    ]


async def test_copies_that_cannot_be_reached_or_read_are_pending_never_erased(
    tmp_path: Path,
) -> None:
    block = cluster_block({"hall-a": MOVED})
    config = load_config(instance(tmp_path, "hall-b", block))
    config.data_path.mkdir(parents=True, exist_ok=True)
    assert await reach_old_copies(config, MOVED) == ()  # never moved: nothing to reach
    missing = tmp_path / "gone" / "einblick.db"
    note_take(config, MOVED, "hall-a", str(missing), str(tmp_path / "gone" / "control.sock"))
    (copy,) = await reach_old_copies(config, MOVED)
    assert copy.instance == "hall-a"
    assert f"its database {missing} cannot be read" in copy.why
    assert "hall-a is not running" in copy.why
    assert read_taken(config.data_path, MOVED) is not None  # kept for the next erasure
    note = config.data_path / f"taken-{MOVED}.json"
    note.write_bytes(b"{")
    (unknown,) = await reach_old_copies(config, MOVED)
    assert unknown.instance == "(unknown)"
    assert f"{note}: not a note of old copies" in unknown.why
    assert "einblick status --instances" in unknown.why
    # a name from a command line that would lead out of the directory is no note
    (outside,) = await reach_old_copies(config, "../werk-a")
    assert "'../werk-a' is not a customer id" in outside.why


async def test_a_copy_whose_clean_up_is_not_finished_stays_pending_until_it_is(
    tmp_path: Path,
) -> None:
    """No personal row is left in the old database, but the old instance still has its note
    of the move: it removed the rows and could not empty its WAL yet, so the pages may still be
    on disk. Pending until the old instance forgets the note."""
    block = cluster_block({"hall-a": MOVED})
    config = load_config(instance(tmp_path, "hall-b", block))
    config.data_path.mkdir(parents=True, exist_ok=True)
    old_dir = tmp_path / "old"
    old_dir.mkdir()
    old_db = old_dir / "einblick.db"
    conn = sqlite3.connect(old_db)
    ensure_schema(conn)
    conn.close()
    write_note(old_dir, Leftover(customer=MOVED, to="hall-b", target_db=str(config.database_path)))
    note_take(config, MOVED, "hall-a", str(old_db), str(old_dir / "control.sock"))
    (copy,) = await reach_old_copies(config, MOVED)
    assert copy.instance == "hall-a"
    assert copy.why.startswith("its clean-up is not finished (the write-ahead log of")
    (old_dir / f"moved-{MOVED}.json").unlink()  # what hall-a does once the WAL is emptied
    assert await reach_old_copies(config, MOVED) == ()
    assert read_taken(config.data_path, MOVED) == TakenFrom(customer=MOVED, copies=[])


async def test_a_socket_that_cannot_be_asked_leaves_the_copy_pending_not_the_erasure_failed(
    tmp_path: Path,
) -> None:
    """Asking fails with an OSError other than "not running": a path too long for AF_UNIX, a
    socket beneath a file (as a socket of another user would fail with PermissionError). The
    copy is pending with why; nothing escapes into the erasure."""
    block = cluster_block({"hall-a": MOVED})
    config = load_config(instance(tmp_path, "hall-b", block))
    config.data_path.mkdir(parents=True, exist_ok=True)
    old_db = tmp_path / "old" / "einblick.db"
    long_socket = tmp_path / ("s" * 120) / "control.sock"
    beneath_file = tmp_path / "a-file" / "control.sock"
    beneath_file.parent.write_bytes(b"")
    for socket in (long_socket, beneath_file):
        note_take(config, MOVED, "hall-a", str(old_db), str(socket))
        (copy,) = await reach_old_copies(config, MOVED)
        assert copy.instance == "hall-a"
        assert "hall-a could not be asked to remove it (" in copy.why
        assert f"{socket}); it does when it next starts" in copy.why
        assert f"its database {old_db} cannot be read" in copy.why


async def test_a_note_that_cannot_be_rewritten_does_not_stop_the_erasure(tmp_path: Path) -> None:
    """A full or read-only disk under the note: the copies found are still returned pending
    (the note is only rewritten to drop copies found gone)."""
    block = cluster_block({"hall-a": MOVED})
    config = load_config(instance(tmp_path, "hall-b", block))
    config.data_path.mkdir(parents=True, exist_ok=True)
    old_db = tmp_path / "old" / "einblick.db"
    note_take(config, MOVED, "hall-a", str(old_db), None)
    (config.data_path / f"taken-{MOVED}.tmp").mkdir()  # the rewrite fails: IsADirectoryError
    (copy,) = await reach_old_copies(config, MOVED)
    assert copy.instance == "hall-a"
    assert "hall-a removes it when it next starts" in copy.why
    (kept,) = read_taken(config.data_path, MOVED).copies  # type: ignore[union-attr]
    assert kept.db == str(old_db)


def test_the_note_reaches_the_disk_before_and_after_its_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The take and the erasure commit durably; the note of where the copy is must too: its
    bytes synced before it replaces the old note, and its directory after."""
    block = cluster_block({"hall-a": MOVED})
    config = load_config(instance(tmp_path, "hall-b", block))
    config.data_path.mkdir(parents=True, exist_ok=True)
    note = config.data_path / f"taken-{MOVED}.json"
    synced: list[tuple[int, bool]] = []  # (inode, whether the note had its new name yet)
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append((os.fstat(fd).st_ino, note.exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    note_take(config, MOVED, "hall-a", str(tmp_path / "old.db"), None)
    assert synced == [(note.stat().st_ino, False), (config.data_path.stat().st_ino, True)]


async def test_an_old_database_under_a_hash_and_question_mark_is_looked_at_where_it_is(
    tmp_path: Path,
) -> None:
    """The old database is opened through an escaped read-only URI: unescaped, '#' would cut
    its path short, and the copy would read as "cannot be read" from an empty database SQLite
    created at the cut path."""
    block = cluster_block({"hall-a": MOVED})
    config = load_config(instance(tmp_path, "hall-b", block))
    config.data_path.mkdir(parents=True, exist_ok=True)
    old_dir = tmp_path / "old#1?a"
    old_dir.mkdir()
    conn = sqlite3.connect(old_dir / "einblick.db")
    ensure_schema(conn)
    conn.close()
    note_take(config, MOVED, "hall-a", str(old_dir / "einblick.db"), None)
    assert await reach_old_copies(config, MOVED) == ()  # looked at: nothing left there
    assert not (tmp_path / "old").exists()


async def test_old_instances_that_do_not_answer_are_asked_at_once_not_one_after_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two old copies whose instances take the question and never answer: both are asked at
    the same time, so the erasure waits one SCRUB_ASK_S, not two (past what `einblick forget`
    waits for its answer), and both copies are pending."""
    monkeypatch.setattr(old_copies, "SCRUB_ASK_S", 1.0)
    config = load_config(instance(tmp_path, "hall-c", cluster_block({"hall-a": MOVED})))
    config.data_path.mkdir(parents=True, exist_ok=True)
    silent: list[asyncio.AbstractServer] = []
    taken: list[asyncio.StreamWriter] = []
    copies = []

    async def take_and_say_nothing(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        taken.append(w)  # held open, unanswered, until the test ends

    for name in ("hall-a", "hall-b"):
        socket = tmp_path / f"{name}.sock"
        silent.append(await asyncio.start_unix_server(take_and_say_nothing, path=str(socket)))
        db = tmp_path / name / "einblick.db"
        copies.append(OldCopy(instance=name, db=str(db), socket=str(socket), to="x", target_db="y"))
    old_copies._write(config.data_path, TakenFrom(customer=MOVED, copies=copies))
    started = time.monotonic()
    try:
        pending = await reach_old_copies(config, MOVED)
    finally:
        for writer in taken:
            writer.close()
            await writer.wait_closed()
        for server in silent:
            server.close()
            await server.wait_closed()
    assert len(taken) == 2  # each was asked
    assert time.monotonic() - started < 1.9  # one wait, not two
    assert [p.instance for p in pending] == ["hall-a", "hall-b"]
    assert all("did not remove it" in p.why for p in pending), pending


async def test_a_running_gateway_knows_from_its_moves_which_customer_was_taken_over(
    tmp_path: Path,
) -> None:
    """Answering about erasures, the running gateway takes "taken over" from its own record of
    moves (kept with every handover) instead of reading its log per customer; taken over with
    no note is pending, never "erased"."""
    config = load_config(instance(tmp_path, "hall-b", cluster_block({"hall-a": MOVED})))
    config.data_path.mkdir(parents=True, exist_ok=True)
    config.record_moves(frozenset(), frozenset({MOVED}))
    (unknown,) = await reach_old_copies(config, MOVED, clean_up=False, moves_known=True)
    assert unknown.instance == "(unknown)" and "no note of where the copy is" in unknown.why
    assert await reach_old_copies(config, "werk-b", clean_up=False, moves_known=True) == ()
    assert not config.database_path.exists()  # the log was never opened for it
