"""Erasure requests customers sent through the portal that the installer has not yet carried
out, for ``einblick status`` and the TUI's overview.

A request is open until the log holds an erasure of that customer's whole data made at or after
the request (``einblick forget --customer C``, asked of the running gateway's ``erasures``) and no
earlier instance still keeps a copy of the customer's data after a move (``copies_pending``, as
the gateway sees it when asked: the request closes once that instance's clean-up removed it).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from gateway.operations import control_model as ops
from gateway.operations.control import ControlError, ask
from gateway.operations.portal.store import ErasureRequest, pending_erasures

__all__ = [
    "PendingErasure",
    "as_records",
    "carried_out",
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


def open_requests(
    requests: Iterable[ErasureRequest], erasures: Iterable[tuple[str, str | None, float]]
) -> list[ErasureRequest]:
    """``requests`` not yet answered by an erasure (customer, device, at) of the whole customer."""
    done = list(erasures)
    return [
        r
        for r in requests
        if not any(c == r.customer and d is None and at >= r.at for c, d, at in done)
    ]


def _erasures(answer: Sequence[ops.ErasureRecord]) -> list[tuple[str, str | None, float]]:
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
        out.append((e.customer, e.device, at.timestamp()))
    return out


async def carried_out(
    control_socket: Path, customer: str | None = None
) -> list[tuple[str, str | None, float]] | None:
    """The erasures the gateway has done (customer, device, at), of ``customer`` or of all;
    None when it cannot say."""
    try:
        fields = ops.CustomerRequest(customer=customer)
        answer = await ask(control_socket, ops.ERASURES, fields, timeout=5)
    except ControlError:
        return None
    return _erasures(answer.erasures)


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
