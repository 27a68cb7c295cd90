"""``einblick handover``: move a running customer, with its log, to another instance.

    einblick handover --customer werk-d --to hall-b --instances hall-*/einblick.yaml

Both instances must be running; the command drives their control sockets through the steps of
gateway/operations/handover.py (hold on the new one, release on the old one, take on the new
one). Where the move stands is read from the logs first (gateway/log/moves.py), so the same
command run again after any interruption finishes the move, or says why it cannot. Both
databases must be readable from here and by the new instance (one box, or a shared volume),
as for ``einblick export --instances``.

stdout: one line saying what moved (``--json``: the figures as one object).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from gateway.commands.gateway_cmds import SubParsers
from gateway.config import Config
from gateway.errors import GatewayError
from gateway.operations.cluster import BOX_LOG, load_instances, moves, trees
from gateway.operations.control import ControlError, GatewayNotRunning, ask
from gateway.operations.handover_model import (
    HANDOVER_DROP,
    HANDOVER_HOLD,
    HANDOVER_PREPARE,
    HANDOVER_RELEASE,
    HANDOVER_SCRUB,
    HANDOVER_TAKE,
    RELEASE_RETRY_S,
    HandoverRequest,
    HoldReply,
    HoldRequest,
    ReleaseReply,
    ReleaseRequest,
    ScrubRequest,
    TakeRequest,
)
from gateway.operations.holds import Hold, read_hold

__all__ = ["HandoverRefused", "Move", "after_refusal", "plan", "register", "run"]


class HandoverRefused(GatewayError):
    """The move cannot start or go on; the message says what to do."""


@dataclass(frozen=True, slots=True)
class Move:
    """Who gives the customer's log, who takes it, whether the old log is already closed, and
    whether the move is complete (``done``: only the old copy may be left to remove)."""

    customer: str
    source: Config
    target: Config
    closed: bool
    done: bool = False


def register(sub: SubParsers) -> None:
    parser = sub.add_parser(
        "handover",
        help="move a running customer and its log to another instance of the cluster",
    )
    parser.add_argument("--customer", required=True)
    parser.add_argument("--to", required=True, metavar="INSTANCE", help="the instance taking it")
    parser.add_argument(
        "--from",
        dest="source",
        metavar="INSTANCE",
        help="refuse unless this instance owns the customer now (a check, not a choice)",
    )
    parser.add_argument(
        "--instances",
        type=Path,
        nargs="+",
        required=True,
        metavar="CONFIG",
        help="every instance's configuration (a cluster)",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the old instance may take to send the customer's queued releases",
    )
    parser.add_argument("--json", action="store_true", help="the figures as one JSON object")
    parser.set_defaults(func=_main)


def plan(configs: list[Config], customer: str, to: str, source: str | None = None) -> Move:
    """Where the move of ``customer`` to ``to`` stands, from the configurations and the logs;
    HandoverRefused when it cannot start or go on."""
    cluster = configs[0].cluster
    assert cluster is not None, "load_instances checks every configuration has a cluster"
    by_name = {c.instance: c for c in configs}
    if to not in cluster.names:
        raise HandoverRefused(
            f"unknown instance {to!r}: the cluster: section names {', '.join(cluster.names)}"
        )
    if to not in by_name:
        raise HandoverRefused(
            f"instance {to!r} is in the cluster, but its configuration is not among --instances"
        )
    if customer == BOX_LOG:
        raise HandoverRefused(f"{BOX_LOG!r} is each instance's own log, not a customer")
    target = by_name[to]
    for config in configs:
        # a hold kept after a refused release may hold messages only it received: moving the
        # customer elsewhere would leave them to nobody
        if config.instance != to and read_hold(config.data_path, customer) is not None:
            raise HandoverRefused(
                f"instance {config.instance!r} keeps a hold session for customer {customer!r} "
                "from an earlier move, which may hold messages only it received. Finish that "
                f"move first: einblick handover --customer {customer} --to {config.instance} "
                "--instances …; then move the customer on from there"
            )
    recorded = {c.instance: moves(c) for c in configs}
    at_target = customer in trees(target)
    held = read_hold(target.data_path, customer) is not None
    for config in configs:
        went = recorded[config.instance].handed_out.get(customer)
        if went is None:
            continue
        if went == to and (not at_target or (customer in recorded[to].taken_over and held)):
            # closed for ``to`` and not yet taken over there, or its hold not yet drained: an
            # interrupted move, resumed
            _check_source(config, source)
            return Move(customer, config, target, closed=True)
        if went == to and customer in recorded[to].taken_over:
            # taken over and its hold drained: the move is complete. Run again, the command
            # removes the old instance's copy if it is still there, and moves nothing
            _check_source(config, source)
            return Move(customer, config, target, closed=True, done=True)
        if went not in recorded or customer not in trees(by_name[went]):
            raise HandoverRefused(
                f"customer {customer!r}'s log was handed over by {config.instance!r} to "
                f"{went!r}, which has not taken it over yet: finish that move first "
                f"(einblick handover --customer {customer} --to {went} --instances …)"
            )
    holding = [
        c
        for c in configs
        if customer in trees(c) and customer not in recorded[c.instance].handed_out
    ]
    if len(holding) > 1:
        raise HandoverRefused(
            f"customer {customer!r} has open logs on several instances "
            f"({', '.join(c.instance for c in holding)}): not one history; nothing is moved"
        )
    if not holding:
        raise HandoverRefused(
            f"customer {customer!r} has no log on any instance given (the cluster: section "
            f"assigns it to {cluster.owner(customer)!r}): with no history to move, list the "
            f"customer under {to!r} in cluster.instances on every instance and restart them"
        )
    current = holding[0]
    if current.instance == to:
        raise HandoverRefused(
            f"customer {customer!r} already belongs to instance {to!r}: nothing to move"
        )
    if at_target:  # a resumed move returned above
        # checked before anything moves: the new instance could not adopt the log after the
        # old one closed it, and the customer's messages would wait in the broker meanwhile
        raise HandoverRefused(
            f"instance {to!r} still holds the earlier part of customer {customer!r}'s log (it "
            "handed the customer over before); a log cannot be taken back into a database "
            "that holds an older copy of it. Move the customer to another instance"
        )
    _check_source(current, source)
    return Move(customer, current, target, closed=False)


def _held(customer: str, hold: HoldReply) -> Hold | None:
    """The hold as the old instance needs it to drain it after a refused release (None: the
    new instance named no filters, an older version; it then keeps the hold)."""
    if not hold.filters:
        return None
    return Hold(customer=customer, client_id=hold.client_id, filters=hold.filters, since=hold.since)


def _check_held(move: Move, filters: list[str], hold: HoldReply) -> None:
    """Before the release: the hold holds every filter the old instance gives up. The old
    instance checks again against its filters of the moment, but only when the release names
    the hold; an instance that answers without its hold's filters is refused here."""
    missing = sorted(set(filters) - set(hold.filters))
    if missing:
        raise HandoverRefused(
            f"handover of {move.customer!r}: the hold session on {move.target.instance} does not "
            f"say it holds {', '.join(missing)}; nothing moved. Run the same command again, with "
            f"{move.target.instance} running this version of einblick"
        )


def _check_source(config: Config, source: str | None) -> None:
    if source is not None and config.instance != source:
        raise HandoverRefused(
            f"--from {source}: the customer's log is with instance {config.instance!r}, not "
            f"{source!r}; leave out --from, or check the names"
        )


async def run(move: Move, wait_s: float) -> dict[str, object]:
    """Drive both instances through the move; the figures of what happened."""
    customer = move.customer
    source, target = move.source.control_socket, move.target.control_socket
    started = time.monotonic()
    ask_s = 30.0
    try:
        prepared = await ask(source, HANDOVER_PREPARE, HandoverRequest(customer=customer))
        filters = [] if move.closed or prepared.closed else prepared.filters
        hold = await ask(target, HANDOVER_HOLD, HoldRequest(customer=customer, filters=filters))
        _check_held(move, filters, hold)
        # the release may ask the broker again for RELEASE_RETRY_S, then fence and wait; the
        # old instance closes the tree only while this command still waits for its answer
        timeout = wait_s + 2 * ask_s + RELEASE_RETRY_S
        release = ReleaseRequest(
            customer=customer,
            to_origin=f"{move.target.instance}/{customer}",
            new_key=hold.key,
            wait_s=wait_s,
            target_db=str(move.target.database_path),
            hold=_held(customer, hold),
            # the old instance ends every wait by then: the rest is for a refused release's
            # take-back (its hold drained there) and for the answer
            answer_within_s=timeout - 2 * ask_s,
        )
        try:
            released = await ask(source, HANDOVER_RELEASE, release, timeout=timeout)
        except ControlError as refused:
            if move.closed or prepared.closed:
                raise
            released = await after_refusal(move, release, refused)
        taken = await ask(
            target,
            HANDOVER_TAKE,
            TakeRequest(
                closed=released.closed,
                source_db=str(move.source.database_path),
                source_socket=str(move.source.control_socket),
            ),
            timeout=10 * ask_s,
        )
    except GatewayNotRunning as exc:
        raise HandoverRefused(
            f"{exc}. Both instances must run during a handover: start it and run the same "
            "command again"
        ) from exc
    except ControlError as exc:
        raise HandoverRefused(f"handover of {customer!r}: {exc}") from exc
    # The move is complete: the old instance's copy of the customer's personal data goes.
    left = await _scrub(move)
    return {
        "customer": customer,
        "from": move.source.instance,
        "to": move.target.instance,
        "status": "moved",
        "entries": taken.entries,
        "handed_over_at": released.closed.size,
        "held": taken.drained,
        "duplicates_at_most": released.overlap + taken.overlap,
        "resumed": move.closed,
        "old_copy_kept": left,
        "seconds": round(time.monotonic() - started, 2),
    }


async def after_refusal(move: Move, release: ReleaseRequest, refused: ControlError) -> ReleaseReply:
    """The release was refused, or its answer did not come (a timeout, a dropped socket).
    Where the move stands is asked again: a tree closed after all goes on to the take (the
    release on a closed tree gives the same record), so a hold is never ended behind a log
    that moved. Otherwise nothing moved: the old instance took the customer back, and with it
    what only the hold received since its UNSUBSCRIBE. The new instance ends the hold only if
    the broker says the old one has ended it, else keeps it for the same command run again."""
    source, target = move.source.control_socket, move.target.control_socket
    customer = move.customer
    try:
        again = await ask(source, HANDOVER_PREPARE, HandoverRequest(customer=customer))
    except ControlError as exc:  # the hold stays: where the move stands is not known
        raise ControlError(
            f"{refused}. {move.source.instance} does not say where the move stands ({exc}); "
            f"the hold on {move.target.instance} is kept. Run the same command again"
        ) from refused
    if again.closed:
        return await ask(source, HANDOVER_RELEASE, release, timeout=30.0)
    try:
        await ask(target, HANDOVER_DROP, HandoverRequest(customer=customer))
    except ControlError as kept:
        raise ControlError(f"{refused}. {kept}") from refused
    raise refused


async def clean_up(move: Move) -> dict[str, object]:
    """A complete move run again: the old instance's copy goes, if it is still there."""
    return {
        "customer": move.customer,
        "from": move.source.instance,
        "to": move.target.instance,
        "status": "already moved",
        "old_copy_kept": await _scrub(move),
    }


async def _scrub(move: Move) -> str | None:
    """Ask the old instance to remove its copy; what is left there, in words, or None. The
    move does not depend on it: the old instance noted where the log went at the release and
    removes its copy when it next starts, if it cannot now."""
    scrub = ScrubRequest(
        customer=move.customer, to=move.target.instance, target_db=str(move.target.database_path)
    )
    try:
        scrubbed = await ask(move.source.control_socket, HANDOVER_SCRUB, scrub, timeout=300.0)
    except ControlError as exc:
        return f"{exc}; it is removed when {move.source.instance} starts again"
    return scrubbed.waiting


def _main(args: argparse.Namespace) -> int:
    configs = load_instances(args.instances)
    move = plan(configs, args.customer, args.to, args.source)
    if move.done:
        cleaned = asyncio.run(clean_up(move))
        if args.json:
            sys.stdout.write(orjson.dumps(cleaned).decode() + "\n")
        else:
            sys.stdout.write(
                f"{move.customer}: already moved from {cleaned['from']} to {cleaned['to']}\n"
            )
            _say_copy(cleaned)
        return 0
    done = asyncio.run(run(move, args.wait))
    if args.json:
        sys.stdout.write(orjson.dumps(done).decode() + "\n")
    else:
        sys.stdout.write(
            f"{done['customer']}: handed over from {done['from']} to {done['to']} at "
            f"{done['handed_over_at']} entries; {done['held']} messages held during the move "
            f"and decided by {done['to']}; at most {done['duplicates_at_most']} decided twice\n"
        )
        _say_copy(done)
    return 0


def _say_copy(done: dict[str, object]) -> None:
    left = done["old_copy_kept"]
    if left is None:
        sys.stdout.write(f"{done['from']} no longer holds the customer's personal data\n")
    else:
        sys.stdout.write(f"{done['from']} still holds a copy of its personal data: {left}\n")
