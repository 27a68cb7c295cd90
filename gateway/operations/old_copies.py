"""The new instance after a handover: where old copies of a taken-over customer's personal data
are, and reaching them when the customer's data is erased.

After ``einblick handover`` the old instance keeps its copy of the customer's personal data
until the new instance's log records the handover and someone asks it to clean up (the command
does at once; the old instance itself at its next start: gateway/operations/moved.py). An
interrupted move can leave that copy for a while, and an erasure run on the new instance would
not reach it: its receipt would say "erased" while another database still holds the content.

So the new instance writes down, before it takes the log over, where the copy it came from is
(``taken-<customer>.json`` beside its database: the old instance, its database and its control
socket), together with the copies the old instance itself still knew of (a customer moved twice
can leave two). An erasure then reaches each (``reach_old_copies``): it asks the old instance to
clean up now (``handover_scrub``, which removes all of the customer's personal data there, so
every device's too), and then looks in the old database itself, read-only, whether any personal
row of the customer is left — never taking the answer's word for it. A copy with nothing left is
forgotten from the note; each other one is returned as pending, with the instance and why, and
the erasure says so in its signed entry and its answer instead of claiming it. The copy goes
when that instance cleans up, at the latest at its next start.

The note outlives its last copy (it then lists none): it is the proof that every copy was
reached. A customer this instance's log says it took over (``gateway.log.moves``) with no note
at all — lost with a disk, deleted by hand, or a move from before notes were kept — has a copy
somewhere nobody here can name, and every erasure says so rather than claim it.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config import Config
from gateway.durable import replace_durably
from gateway.errors import LogError
from gateway.log.moves import read_moves
from gateway.operations.control import ControlError, GatewayNotRunning, ask
from gateway.operations.handover_model import HANDOVER_SCRUB, ScrubRequest
from gateway.operations.moved import note_path as moved_note
from gateway.operations.moved import personal_left
from gateway.rights.erasure import PendingCopy

__all__ = ["OldCopy", "TakenFrom", "note_take", "reach_old_copies", "read_taken"]

log = logging.getLogger(__name__)

# The old instance removes the customer's rows and copies its WAL back (50,000 entries: 0.14 s);
# well inside the minute ``einblick forget`` waits for the whole erasure.
SCRUB_ASK_S = 30.0


class OldCopy(BaseModel):
    """One instance that may still hold a copy of the customer's personal data: its database
    and control socket, and the move that left the copy (``to``, ``target_db``: where the old
    instance checks that the log arrived before it cleans up)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    instance: str
    db: str
    socket: str | None
    to: str
    target_db: str


class TakenFrom(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    customer: str
    copies: list[OldCopy]


def note_path(data_path: Path, customer: str) -> Path:
    """ValueError for a name that would lead out of ``data_path`` (ids never do; a command
    line can say anything)."""
    if not customer or Path(customer).name != customer or customer.startswith("."):
        raise ValueError(f"{customer!r} is not a customer id")
    return data_path / f"taken-{customer}.json"


def _write(data_path: Path, taken: TakenFrom) -> None:
    """Replace the note, durably: the handover's take and the erasure that trusts the note
    are durable SQLite commits, so a power cut must not leave the log saying "taken over" with
    the note of where the copy is lost or empty."""
    replace_durably(note_path(data_path, taken.customer), taken.model_dump_json().encode())


def read_taken(data_path: Path, customer: str) -> TakenFrom | None:
    """The old copies noted for ``customer`` (None: none). A note that cannot be read raises
    ValueError naming the file and why: the caller must not take it for "no copy"."""
    path = note_path(data_path, customer)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return TakenFrom.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the file"
        raise ValueError(f"{path}: not a note of old copies: {where}: {first['msg']}") from exc


def note_take(
    config: Config, customer: str, old_instance: str, source_db: str, source_socket: str | None
) -> None:
    """Before the new instance takes ``customer``'s log over: the copy it comes from, and the
    copies the old instance still knew of (read beside its control socket, if it is given)."""
    copies = [
        OldCopy(
            instance=old_instance,
            db=source_db,
            socket=source_socket,
            to=config.instance,
            target_db=str(config.database_path),
        )
    ]
    if source_socket is not None:
        try:
            inherited = read_taken(Path(source_socket).parent, customer)
        except ValueError:
            # Not known here then; the earlier instance's status still shows its OLD COPY,
            # and the old instance's own erasures name the note it cannot read.
            inherited = None
        if inherited is not None:
            copies.extend(c for c in inherited.copies if c.db != source_db)
    _write(config.data_path, TakenFrom(customer=customer, copies=copies))


def _left_in(db: str, customer: str) -> int | str:
    """The customer's personal rows in ``db``, or why they cannot be counted."""
    try:
        conn = sqlite3.connect(Path(db).absolute().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        return f"its database {db} cannot be read ({exc})"
    try:
        return personal_left(conn, customer)
    except sqlite3.Error as exc:
        return f"its database {db} cannot be read ({exc})"
    finally:
        conn.close()


async def reach_old_copies(
    config: Config, customer: str, *, clean_up: bool = True, moves_known: bool = False
) -> tuple[PendingCopy, ...]:
    """Remove every old copy of ``customer``'s personal data this instance knows of; the ones
    that still hold some, each with why. ``clean_up=False``: only look (read-only, nothing
    asked, the note left as it is) — what an answer about an earlier erasure must still say.
    ``moves_known``: ``config.moves`` is the running gateway's, kept with every handover, so
    whether a customer without a note was taken over needs no read of the log."""
    try:
        taken = read_taken(config.data_path, customer)
    except ValueError as exc:
        return (
            PendingCopy(
                instance="(unknown)",
                why=(
                    f"{exc}: where the customer's earlier instance keeps its copy is not known. "
                    "Check einblick status --instances for an OLD COPY of the customer and run "
                    "the einblick handover it names"
                ),
            ),
        )
    if taken is None:
        if moves_known:
            return _unnoted_pending() if customer in config.moves[1] else ()
        return await _unnoted(config, customer)
    pending: list[PendingCopy] = []
    kept: list[OldCopy] = []
    # All old instances asked at once: one after another, two that do not answer would take
    # twice SCRUB_ASK_S, past what `einblick forget` waits for the erasure's answer.
    answers: list[str | None] = (
        list(await asyncio.gather(*(_ask_to_clean_up(c, customer) for c in taken.copies)))
        if clean_up
        else [None] * len(taken.copies)
    )
    for copy, asked in zip(taken.copies, answers, strict=True):
        left = await asyncio.to_thread(_left_in, copy.db, customer)
        # The old instance forgets its note of the move only once no row is left and its WAL
        # is copied back and emptied: rows gone with the note still there means the removed
        # pages may still sit in its WAL (a reader held it).
        noted = copy.socket is not None and moved_note(Path(copy.socket).parent, customer).exists()
        if left == 0 and not noted:
            continue
        if isinstance(left, str):
            why = left
        elif left:
            why = f"{left} personal rows are left in {copy.db}"
        else:
            why = (
                f"its clean-up is not finished (the write-ahead log of {copy.db} may still hold it)"
            )
        pending.append(PendingCopy(instance=copy.instance, why=f"{why}; {asked}" if asked else why))
        kept.append(copy)
    if clean_up:
        try:
            _write(config.data_path, TakenFrom(customer=customer, copies=kept))
        except OSError as exc:
            # The pending list is right either way: the note only keeps copies found gone, which
            # the next erasure asks about again and finds gone. Failing here would stop an erasure
            # whose retained messages may already be cleared.
            log.warning(
                "could not update the note of %s's old copies in %s (%s); the next erasure checks "
                "the copies it names again",
                customer,
                config.data_path,
                exc.strerror or exc,
            )
    return tuple(pending)


async def _unnoted(config: Config, customer: str) -> tuple[PendingCopy, ...]:
    """No note: no copy only if this instance's log never took ``customer`` over."""
    try:
        moves = await asyncio.to_thread(read_moves, config.database_path, config.instance)
    except LogError as exc:
        return (
            PendingCopy(instance="(unknown)", why=f"whether it was taken over is not known: {exc}"),
        )
    if customer not in moves.taken_over and customer not in config.moves[1]:
        return ()
    return _unnoted_pending()


def _unnoted_pending() -> tuple[PendingCopy, ...]:
    """Taken over, and no note of where the old copy is: never "erased" without proof."""
    return (
        PendingCopy(
            instance="(unknown)",
            why=(
                "unknown old instance: no note of where the copy is; see einblick status on the "
                "instance it came from"
            ),
        ),
    )


async def _ask_to_clean_up(copy: OldCopy, customer: str) -> str | None:
    """Ask the old instance to remove its copy now; why it did not, or None."""
    if copy.socket is None:
        return f"{copy.instance} removes it when it next starts"
    scrub = ScrubRequest(customer=customer, to=copy.to, target_db=copy.target_db)
    try:
        reply = await ask(Path(copy.socket), HANDOVER_SCRUB, scrub, timeout=SCRUB_ASK_S)
    except GatewayNotRunning:
        return f"{copy.instance} is not running; it removes the copy when it next starts"
    except ControlError as exc:
        return f"{copy.instance} did not remove it ({exc}); it does when it next starts"
    except OSError as exc:
        # A socket of another user (0600), a path too long for AF_UNIX, a reset mid-answer: the
        # copy is then as unreached as with the instance stopped, and the erasure must go on to
        # say so rather than fail after it began.
        return (
            f"{copy.instance} could not be asked to remove it ({exc.strerror or exc}: "
            f"{copy.socket}); it does when it next starts"
        )
    return reply.waiting
