"""The old instance after a handover: its copy of the moved customer's personal data goes.

When the old instance gives a customer's log away (``handover_release``,
gateway/operations/handover.py) it writes down beside its database where the log went
(``moved-<customer>.json``: the new instance and its database). Once the new instance's
handover record is committed there — checked in that database, never taken on the command's
word, since before it the new instance still reads the tree from here — the old instance
removes the customer's personal rows (``gateway.log.leftovers`` says what goes and what stays,
and why), copies the WAL into the database so no page keeps a copy, and forgets the note.

It does so when the command asks (``handover_scrub``, right after the take) and, for every
note still there, when the instance starts: a crash between the move and the scrub is
finished at the next start. Until then ``einblick status`` shows the copy as kept.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config import Config
from gateway.durable import replace_durably
from gateway.errors import GatewayError
from gateway.log.leftovers import (
    Leftovers,
    closed_for,
    personal_rows,
    remove_leftovers,
    taken_over_by,
)
from gateway.log.writer import LogWriter
from gateway.messages.outbox import Outbox, erase, queued_of
from gateway.messages.pseudonyms import Keyring
from gateway.messages.store import Store
from gateway.operations.control import Handler, bind
from gateway.operations.handover_model import (
    HANDOVER_SCRUB,
    ReleaseRequest,
    ScrubReply,
    ScrubRequest,
)
from gateway.operations.holds import HoldError, read_hold
from gateway.operations.status_model import HandoverPending
from gateway.rights.consent import ConsentBook
from gateway.rights.erasure import NOTICE_GRANT

__all__ = [
    "Leftover",
    "MovedError",
    "Scrubber",
    "note_release",
    "pending_handovers",
    "personal_left",
    "read_note",
    "read_notes",
    "scrub_handlers",
    "write_note",
]

log = logging.getLogger(__name__)


class MovedError(GatewayError):
    """The note of a move cannot be read or written; the message says what to do."""


class Leftover(BaseModel):
    """Where a customer's log went: written by the old instance at the release."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer: str
    to: str  # the new instance
    target_db: str  # its log database, where the handover record is looked for


def note_path(data_path: Path, customer: str) -> Path:
    return data_path / f"moved-{customer}.json"


def write_note(data_path: Path, note: Leftover) -> None:
    # Durable as the closed tree beside it: the note is how the old copy is found and removed.
    replace_durably(note_path(data_path, note.customer), note.model_dump_json().encode())


def note_release(data_path: Path, request: ReleaseRequest) -> None:
    """Right after the old instance closed the tree: where it went (when the command said)."""
    if request.target_db is not None:
        to = request.to_origin.split("/", 1)[0]
        note = Leftover(customer=request.customer, to=to, target_db=request.target_db)
        write_note(data_path, note)


def read_note(path: Path) -> Leftover:
    """One note; MovedError, naming the file, why, and the command that writes it again."""
    try:
        return Leftover.model_validate_json(path.read_bytes())
    except OSError as exc:
        reason = exc.strerror or str(exc)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        reason = f"not a handover note: {where}: {first['msg']}"
    customer = path.stem.removeprefix("moved-")
    raise MovedError(
        f"{path}: the note of a handover cannot be read ({reason}); {customer}'s old copy stays "
        "here until it can. Check with einblick status --instances that the new instance took "
        f"the log over, then run: einblick handover --customer {customer} --to <that instance> "
        "--instances <every instance's einblick.yaml> — it writes the note again and removes "
        "the copy"
    )


def read_notes(data_path: Path) -> tuple[list[Leftover], list[tuple[str, MovedError]]]:
    """Every move whose copy here is not removed yet, and each note that cannot be read (with
    its customer, from the file's name): one bad file stops only its own clean-up."""
    notes: list[Leftover] = []
    unreadable: list[tuple[str, MovedError]] = []
    for path in sorted(data_path.glob("moved-*.json")):
        try:
            notes.append(read_note(path))
        except MovedError as exc:
            unreadable.append((path.stem.removeprefix("moved-"), exc))
    return notes, unreadable


def pending_handovers(config: Config) -> list[HandoverPending]:
    """For ``einblick status``: the holds this instance keeps for a move to it, and the copies
    of moved customers' personal data it still holds, each with what to do."""
    found: list[HandoverPending] = []
    again = (
        "einblick handover --customer {c} --to {to} --instances <every instance's einblick.yaml>"
    )
    for path in sorted(config.data_path.glob("handover-*.json")):
        customer = path.stem.removeprefix("handover-")
        try:
            hold = read_hold(config.data_path, customer)
        except HoldError as exc:
            found.append(HandoverPending(customer=customer, kind="hold", todo=str(exc)))
            continue
        if hold is None:
            continue  # ended meanwhile
        command = again.format(c=customer, to=config.instance)
        found.append(
            HandoverPending(
                customer=customer,
                kind="hold",
                since=hold.since,
                todo=(
                    f"the broker keeps {customer}'s messages for this instance in the hold "
                    f"session {hold.client_id} ({len(hold.filters)} filter(s)): a move of "
                    f"{customer} to here is under way or was interrupted. If no einblick "
                    f"handover is running, run it again to finish the move: {command}. Until "
                    "then nobody decides these messages, and the broker drops what exceeds "
                    "its per-client queue"
                ),
            )
        )
    notes, unreadable = read_notes(config.data_path)
    for customer, problem in unreadable:
        found.append(HandoverPending(customer=customer, kind="copy", todo=str(problem)))
    for note in notes:
        command = again.format(c=note.customer, to=note.to)
        found.append(
            HandoverPending(
                customer=note.customer,
                kind="copy",
                todo=(
                    f"{note.customer} was handed over to {note.to}, and this instance still "
                    f"holds a copy of its personal data until {note.to}'s log records the "
                    f"handover ({note.target_db}). If the move is not finished, run: {command}; "
                    "the copy goes at once, or when this instance next starts"
                ),
            )
        )
    return found


@dataclass(frozen=True)
class Scrubber:
    """Removes a moved customer's personal rows from this instance's log, once it may."""

    config: Callable[[], Config]
    store: Store
    writer: Callable[[], LogWriter]
    keyring: Keyring
    consents: ConsentBook
    outbox: Outbox  # the rows removed give their room back (their forwarders read again)

    async def scrub(self, request: ScrubRequest) -> ScrubReply:
        """The ``handover_scrub`` op: note where the log went (if the release did not), then
        remove the copy if the new instance's record is committed."""
        config = self.config()
        customer = request.customer
        if customer not in config.moves[0]:
            raise MovedError(
                f"instance {config.instance!r} has not handed {customer!r} over: nothing to "
                "remove (einblick status --instances shows who holds it)"
            )
        try:
            note = read_note(note_path(config.data_path, customer))
        except MovedError:
            # Not written (the release did not say where), removed by hand, or unreadable: the
            # command's word is taken for where to look, never for whether the log arrived
            # there (``_scrub`` checks that database).
            note = Leftover(customer=customer, to=request.to, target_db=request.target_db)
            write_note(config.data_path, note)
        return await self._scrub(note)

    async def pending(self) -> list[ScrubReply]:
        """At start: every move noted and not yet cleaned up, in turn. A note that cannot be
        read stops only its own clean-up, never another's nor the start (status shows it)."""
        notes, unreadable = read_notes(self.config().data_path)
        for _customer, exc in unreadable:
            log.warning("%s", exc)
        return [await self._scrub(note) for note in notes]

    async def _scrub(self, note: Leftover) -> ScrubReply:
        config, writer, customer = self.config(), self.writer(), note.customer
        closed = await self.store.read(lambda conn: closed_for(conn, customer))
        if closed is None:
            return ScrubReply(
                customer=customer, removed=0, waiting=f"{customer}'s log is open here"
            )
        size, _ = closed
        old_origin = writer.origin_of(customer)
        done = await asyncio.to_thread(
            taken_over_by, Path(note.target_db), customer, old_origin, size
        )
        if not done:
            return ScrubReply(
                customer=customer,
                removed=0,
                waiting=f"instance {note.to!r} has not taken the log over yet ({note.target_db})",
            )

        def job(conn: sqlite3.Connection) -> tuple[Leftovers, list[tuple[str, int, int]]]:
            # The log's part, and every queued row of the customer, through the outbox's own
            # delete: its tree is closed here, so nothing more of it may be recorded (a row
            # withheld later, e.g. as its recipient is removed, could not be). The handover
            # refused to close while any was queued; a leftover is an older version's.
            return remove_leftovers(conn, customer), erase(conn, customer)

        async with self.outbox.erasing():  # as an erasure: none of these leaves after it
            gone, queued = await self.store.transaction(
                job, on_rollback=writer.rolled_back, on_commit=writer.reload
            )
            self.outbox.erased(customer, {r: n for r, n, _ in queued}, {r: b for r, _, b in queued})
        removed = gone.total + sum(n for _, n, _ in queued)
        # the WAL still holds the deleted pages' earlier images: into the database, truncated
        copied = await self.store.read(lambda conn: writer.scrub(), offload=True)
        await self.store.read(self.keyring.load)
        await self.store.read(self.consents.load)
        left = await self.store.read(lambda conn: personal_left(conn, customer))
        if left or not copied:
            why = f"{left} rows remain" if left else "a reader kept the WAL from being copied"
            return ScrubReply(customer=customer, removed=removed, waiting=why)
        note_path(config.data_path, customer).unlink(missing_ok=True)
        if removed:
            log.warning(
                "customer %r: its personal data left this instance (%d rows); %s holds its log",
                customer,
                removed,
                note.to,
            )
        return ScrubReply(customer=customer, removed=removed, waiting=None)


def personal_left(conn: sqlite3.Connection, customer: str) -> int:
    """The rows of ``customer``'s personal data in this database: the log's
    (``gateway.log.leftovers.personal_rows``) and its queued releases (not an erasure's
    notices: they hold no personal value)."""
    queued = queued_of(conn, customer, besides=NOTICE_GRANT)
    return personal_rows(conn, customer).total + sum(queued.values())


def scrub_handlers(scrubber: Scrubber) -> dict[str, Handler]:
    """The ``handover_scrub`` control operation, for the control socket."""
    return {HANDOVER_SCRUB.name: bind(HANDOVER_SCRUB, scrubber.scrub)}
