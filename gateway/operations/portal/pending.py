"""Erasure requests customers sent through the portal that the installer has not yet carried
out, for ``einblick status`` and the TUI's overview.

A request is open until the log holds an erasure of that customer's whole data made after the
request (``einblick forget --customer C``, asked of the running gateway's ``erasures``) and no
earlier instance still keeps a copy of the customer's data after a move (``copies_pending``, as
the gateway sees it when asked: the request closes once that instance's clean-up removed it).

"After" is by the erasures' numbers, which only grow: a request keeps the number of the
customer's newest erasure when it was sent (``ErasureRequest.after``), and only a later one
answers it. By the clocks, an erasure on 3 December answered a request sent after it by a box
whose clock was reset to 1 December, and the portal told the customer "erased since". Only a
request sent while the gateway could not say is compared by time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel, ConfigDict

from gateway.operations import control_model as ops
from gateway.operations.control import ControlError, ask
from gateway.operations.portal.store import ErasureRequest, pending_erasures

__all__ = [
    "Carried",
    "PendingErasure",
    "as_records",
    "carried_out",
    "newest_erasure",
    "open_requests",
    "pending_requests",
    "render_requests",
]


class PendingErasure(BaseModel):
    """An open request as ``einblick status --json`` lists it (``erasure_requests``)."""

    model_config = ConfigDict(frozen=True)

    customer: str
    device: str | None
    requested_at: str  # ISO 8601, UTC
    by: str  # the person the customer named
    login: str  # the portal login that sent it
    command: str  # what the installer runs


class Carried(NamedTuple):
    """An erasure the gateway has done, complete (no copy left elsewhere)."""

    customer: str
    device: str | None  # None: the customer's whole data
    at: float  # POSIX seconds, by the clock of the box that made it
    number: int  # the erasure's number: later erasures have higher ones


def open_requests(
    requests: Iterable[ErasureRequest], erasures: Iterable[Carried]
) -> list[ErasureRequest]:
    """``requests`` not yet answered by an erasure of the whole customer made after them."""
    done = [e for e in erasures if e.device is None]
    return [r for r in requests if not any(_answers(e, r) for e in done)]


def _answers(erasure: Carried, request: ErasureRequest) -> bool:
    if erasure.customer != request.customer:
        return False
    if request.after is not None:
        return erasure.number > request.after
    return erasure.at >= request.at  # sent while the gateway could not say: by the clocks


def _erasures(answer: Sequence[ops.ErasureRecord]) -> list[Carried]:
    out = []
    for e in answer:
        if e.at is None:
            continue  # no time to compare a request with: it stays open, never closed by guess
        if e.copies_pending:
            # An earlier instance still keeps a copy of the customer's data after a move: the
            # erasure is not complete, and the portal must not tell the customer "erased".
            continue
        at = datetime.fromisoformat(e.at)
        at = at if at.tzinfo else at.replace(tzinfo=UTC)
        out.append(Carried(e.customer, e.device, at.timestamp(), e.erasure))
    return out


async def _asked(control_socket: Path, customer: str | None) -> Sequence[ops.ErasureRecord] | None:
    try:
        fields = ops.CustomerRequest(customer=customer)
        answer = await ask(control_socket, ops.ERASURES, fields, timeout=5)
    except ControlError:
        return None
    return answer.erasures


async def carried_out(control_socket: Path, customer: str | None = None) -> list[Carried] | None:
    """The erasures the gateway has completed, of ``customer`` or of all; None when it cannot
    say."""
    answer = await _asked(control_socket, customer)
    return None if answer is None else _erasures(answer)


async def newest_erasure(control_socket: Path, customer: str) -> int | None:
    """The number of ``customer``'s newest erasure, complete or not (0: none yet; None: the
    gateway cannot say), for a request sent now: only a later one answers it. One whose copies
    elsewhere are still pending counts too: it began before the request, so what arrived in
    between is not covered by it."""
    answer = await _asked(control_socket, customer)
    if answer is None:
        return None
    return max((e.erasure for e in answer if e.customer == customer), default=0)


async def pending_requests(portal_db: Path, control_socket: Path) -> list[ErasureRequest]:
    """The open requests; every request when the gateway cannot say which were carried out."""
    requests = pending_erasures(portal_db)
    if not requests:
        return []
    done = await carried_out(control_socket)
    return requests if done is None else open_requests(requests, done)


def render_requests(requests: Sequence[ErasureRequest]) -> list[str]:
    """One line per open request, saying what to run."""
    lines = []
    for r in requests:
        at = datetime.fromtimestamp(r.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines.append(
            f"erasure requested by customer {r.customer} in the portal at {at} "
            f"(by {r.by!r}, login {r.login}): run einblick forget --customer {r.customer} --by ..."
        )
    return lines


def as_records(requests: Sequence[ErasureRequest]) -> list[PendingErasure]:
    """The open requests as ``status --json`` gives them (one record each)."""
    return [
        PendingErasure(
            customer=r.customer,
            device=r.device,
            requested_at=datetime.fromtimestamp(r.at, UTC).isoformat(),
            by=r.by,
            login=r.login,
            command=f"einblick forget --customer {r.customer} --by ...",
        )
        for r in requests
    ]
