"""What a handover leaves on the old instance (gateway/operations/moved.py), against running
instances behind a real Mosquitto: the customer's personal data leaves the old instance once the
new one's log records the handover — at once when the command asks, or at the next start after a
crash in between — and ``einblick status`` shows a hold or an old copy left by an interrupted
move, with what to do."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import orjson

from gateway.config import load_config
from gateway.log.verify import verify_db
from gateway.operations import handover_model as ops
from gateway.operations.control import ControlError, ask, request
from gateway.operations.moved import Leftover, pending_handovers, personal_left, write_note
from gateway.operations.status_text import render_status
from gateway.rights.erasure import NOTICE_GRANT
from tests.faults.cluster_site import ClusterSite, stream_body
from tests.gateway.test_cluster_view import cluster_block, instance
from tests.gateway.test_handover import CUSTOMERS, LISTED, MOVED, close_for_move, handover

NAME = "Anna Weber"
NOTICE = b'{"erasure-notice": "left queued by a crash"}'


def left(db: Path) -> int:
    """The moved customer's personal rows in the database at ``db``: its log's and its queue's."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return personal_left(conn, MOVED)
    finally:
        conn.close()


def payloads(db: Path) -> list[bytes]:
    """The moved customer's stored payloads (what the devices sent, as kept for the proof)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [
            bytes(p)
            for (p,) in conn.execute(
                "SELECT c.payload FROM content c JOIN entries e ON e.seq = c.seq JOIN chains h"
                " ON h.id = e.chain_id WHERE h.name = ? AND c.payload IS NOT NULL",
                (MOVED,),
            )
        ]
    finally:
        conn.close()


def on_disk(db: Path, value: bytes) -> bool:
    """Whether ``value`` is anywhere in the database's files (the WAL too)."""
    wal = db.with_name(db.name + "-wal")
    return value in db.read_bytes() or (wal.exists() and value in wal.read_bytes())


async def started(site: ClusterSite) -> None:
    await site.setup()
    for name in ("hall-a", "hall-b"):
        await site.start(name)
    assert site.spy is not None
    spy = site.spy
    device = site.device(MOVED)
    topic = f"{MOVED}/press-1/telemetry"
    for seq in range(3):
        await device.publish(seq, topic, stream_body(MOVED, seq))
    await device.close()
    await site.wait_until(lambda: len(spy.received) >= 3, 30, "hall-a forwarding")
    # a right of the customer's, with the name of who asked (consent_events)
    old = site.config("hall-a").control_socket
    await request(old, "restrict", customer=MOVED, grant="monitoring", by=NAME)


async def test_the_command_leaves_no_personal_data_on_the_old_instance(tmp_path: Path) -> None:
    site = ClusterSite(tmp_path, ("hall-a", "hall-b"), CUSTOMERS, LISTED)
    try:
        await started(site)
        old, new = site.config("hall-a"), site.config("hall-b")
        sent = payloads(old.database_path)
        assert sent and all(on_disk(old.database_path, p) for p in sent)
        assert left(old.database_path) > 0
        code, out, err = await handover(site)
        assert code == 0, err
        assert orjson.loads(out)["old_copy_kept"] is None
        assert left(old.database_path) == 0
        assert not any(on_disk(old.database_path, p) for p in sent)  # overwritten, WAL too
        assert verify_db(old.database_path).ok  # the closed copy still checks
        assert left(new.database_path) > 0  # the new instance holds it all
        # an erasure asked of the old instance is refused, naming where the customer is now
        try:
            await request(old.control_socket, "forget", customer=MOVED, by=NAME)
            raise AssertionError("the old instance accepted an erasure of a moved customer")
        except ControlError as exc:
            assert "handed over to instance 'hall-b'" in str(exc), exc
            assert "einblick forget --customer werk-a" in str(exc)
        try:
            await request(old.control_socket, "object", customer=MOVED, grant="monitoring", by=NAME)
            raise AssertionError("the old instance accepted a consent action of a moved customer")
        except ControlError as exc:
            assert "handed over to instance 'hall-b'" in str(exc), exc
            assert "einblick consent object --customer werk-a --grant monitoring" in str(exc)
    finally:
        await site.teardown()


async def test_a_crash_between_the_move_and_the_clean_up_is_finished_at_the_next_start(
    tmp_path: Path,
) -> None:
    site = ClusterSite(tmp_path, ("hall-a", "hall-b"), CUSTOMERS, LISTED)
    try:
        await started(site)
        old, new = site.config("hall-a"), site.config("hall-b")
        released = await close_for_move(site, target_db=str(new.database_path))
        # the command stops here: hall-b holds the customer's messages, hall-a its copy
        status_b = await site.status("hall-b")
        assert [(h["customer"], h["kind"]) for h in status_b["handovers"]] == [(MOVED, "hold")]
        assert "einblick handover --customer werk-a --to hall-b" in render_status(status_b)
        status_a = await site.status("hall-a")
        assert [(h["customer"], h["kind"]) for h in status_a["handovers"]] == [(MOVED, "copy")]
        # asked now, the old instance keeps its copy: the new one has not taken the log over
        early = await ask(
            old.control_socket,
            ops.HANDOVER_SCRUB,
            ops.ScrubRequest(customer=MOVED, to="hall-b", target_db=str(new.database_path)),
        )
        assert early.removed == 0 and early.waiting is not None
        assert left(old.database_path) > 0
        await ask(
            new.control_socket,
            ops.HANDOVER_TAKE,
            ops.TakeRequest(closed=released.closed, source_db=str(old.database_path)),
            timeout=60,
        )
        assert (await site.status("hall-b"))["handovers"] == []  # the hold is drained
        await site.kill("hall-a")  # before anyone asks it to remove its copy
        sent = payloads(old.database_path)
        assert sent and left(old.database_path) > 0
        recipient = old.recipients[0].name
        with sqlite3.connect(old.database_path) as conn:  # what an older version left queued
            for grant, payload in (("monitoring", b"LEFT-IN-THE-QUEUE"), (NOTICE_GRANT, NOTICE)):
                conn.execute(
                    "INSERT INTO outbox (entry_seq, recipient, customer, device, grant_id, topic,"
                    " payload, created) VALUES (1, ?, ?, 'press-1', ?, 't', ?, 1.0)",
                    (recipient, MOVED, grant, payload),
                )
        conn.close()
        await site.start("hall-a")
        assert left(old.database_path) == 0  # the queue's row too, through the outbox's delete
        assert not any(on_disk(old.database_path, p) for p in [*sent, b"LEFT-IN-THE-QUEUE"])
        # The notice too: the customer's tree is closed here, nothing more of it may be recorded.
        with contextlib.closing(sqlite3.connect(old.database_path)) as conn:
            queued = conn.execute("SELECT count(*) FROM outbox WHERE customer = ?", (MOVED,))
            assert queued.fetchone() == (0,)
        assert (await site.status("hall-a"))["handovers"] == []
        # an erasure on the new instance: no copy of the customer's data anywhere else
        await request(new.control_socket, "forget", customer=MOVED, by=NAME)
        assert left(old.database_path) == 0
    finally:
        await site.teardown()


def test_status_names_a_note_it_cannot_read_and_what_to_check(tmp_path: Path) -> None:
    block = cluster_block({"hall-a": MOVED})
    config = load_config(instance(tmp_path, "hall-a", block))
    config.data_path.mkdir(parents=True, exist_ok=True)
    write_note(
        config.data_path, Leftover(customer=MOVED, to="hall-b", target_db="/srv/b/einblick.db")
    )
    (shown,) = pending_handovers(config)
    assert (shown.customer, shown.kind) == (MOVED, "copy")
    assert "einblick handover --customer werk-a --to hall-b" in shown.todo
    broken_path = config.data_path / "moved-werk-b.json"
    broken_path.write_text("{", encoding="utf-8")
    # each note on its own: the unreadable one does not hide the readable one
    broken, shown_again = pending_handovers(config)
    assert shown_again == shown
    assert (broken.customer, broken.kind) == ("werk-b", "copy")
    assert f"{broken_path}: the note of a handover cannot be read (not a handover note" in (
        broken.todo
    )
    assert "einblick status --instances" in broken.todo
    assert "einblick handover --customer werk-b --to <that instance>" in broken.todo


async def test_the_command_run_again_after_a_complete_move_removes_the_old_copy(
    tmp_path: Path,
) -> None:
    """The move completed, but the old instance's copy stayed (the clean-up was not asked, and
    its note is unreadable): the same command run again removes it, and says the move was done
    already; run once more, it says the same and changes nothing."""
    site = ClusterSite(tmp_path, ("hall-a", "hall-b"), CUSTOMERS, LISTED)
    try:
        await started(site)
        old, new = site.config("hall-a"), site.config("hall-b")
        released = await close_for_move(site, target_db=str(new.database_path))
        await ask(
            new.control_socket,
            ops.HANDOVER_TAKE,
            ops.TakeRequest(closed=released.closed, source_db=str(old.database_path)),
            timeout=60,
        )
        # the command died before it asked hall-a to remove its copy; its note is damaged
        note = old.data_path / f"moved-{MOVED}.json"
        note.write_bytes(b"\x00garbage")
        sent = payloads(old.database_path)
        assert sent and left(old.database_path) > 0
        (copy,) = (await site.status("hall-a"))["handovers"]
        assert copy["customer"] == MOVED and str(note) in copy["todo"]
        assert f"einblick handover --customer {MOVED}" in copy["todo"]

        expected = {
            "customer": MOVED,
            "from": "hall-a",
            "to": "hall-b",
            "status": "already moved",
            "old_copy_kept": None,
        }
        code, out, err = await handover(site)
        assert code == 0, err
        assert orjson.loads(out) == expected
        assert left(old.database_path) == 0 and not note.exists()
        assert not any(on_disk(old.database_path, p) for p in sent)
        assert (await site.status("hall-a"))["handovers"] == []
        assert verify_db(old.database_path).ok and verify_db(new.database_path).ok
        # idempotent: once more, the same answer, nothing changed
        code, out, err = await handover(site)
        assert code == 0, err
        assert orjson.loads(out) == expected
        assert left(new.database_path) > 0
    finally:
        await site.teardown()
