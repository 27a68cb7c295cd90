"""Erasure requests from the portal that the installer has not carried out: open until an
erasure of the customer's whole data at or after the request; all of them when the gateway
cannot say; each said as the command to run."""

from __future__ import annotations

from pathlib import Path

from gateway.operations import control_model as ops
from gateway.operations.control import ControlServer, bind
from gateway.operations.portal.pending import (
    carried_out,
    open_requests,
    pending_requests,
    render_requests,
)
from gateway.operations.portal.store import ErasureRequest, PortalStore

T = 1_800_000_000.0


def request(number: int, customer: str, at: float) -> ErasureRequest:
    return ErasureRequest(number, customer, "anna", "Anna Weber", None, at)


def test_a_request_is_open_until_a_whole_erasure_at_or_after_it() -> None:
    asked = [request(1, "baeckerei", T), request(2, "huber", T)]
    assert open_requests(asked, []) == asked
    assert open_requests(asked, [("baeckerei", None, T - 1)]) == asked  # before the request
    assert open_requests(asked, [("baeckerei", "oven-1", T + 5)]) == asked  # one device only
    assert open_requests(asked, [("baeckerei", None, T)]) == [asked[1]]
    assert open_requests(asked, [("huber", None, T + 60)]) == [asked[0]]


async def test_without_a_gateway_every_request_stays_open(tmp_path: Path) -> None:
    store = PortalStore(tmp_path / "portal.db", clock=lambda: T)
    store.request_erasure("baeckerei", "anna", "Anna Weber", None)
    store.close()
    socket = tmp_path / "no-gateway.sock"
    assert await carried_out(socket) is None
    found = await pending_requests(tmp_path / "portal.db", socket)
    assert [(r.customer, r.by) for r in found] == [("baeckerei", "Anna Weber")]
    assert await pending_requests(tmp_path / "absent.db", socket) == []


def test_each_open_request_says_what_to_run() -> None:
    [line] = render_requests([request(1, "baeckerei", T)])
    assert line == (
        "erasure requested by customer baeckerei in the portal at 2027-01-15 08:00 UTC "
        "(by 'Anna Weber', login anna): run einblick forget --customer baeckerei --by ..."
    )


def _erasure(
    number: int, customer: str, at: str | None, held_by: str | None = None
) -> ops.ErasureRecord:
    return ops.ErasureRecord(
        erasure=number,
        customer=customer,
        device=None,
        at=at,
        requested_by=None,
        entry_seq=number,
        content_erased=0,
        queued_erased=0,
        keys_destroyed=0,
        retained_cleared=0,
        notices=[],
        copies_pending=[]
        if held_by is None
        else [ops.PendingCopyRecord(instance=held_by, why="3 personal rows are left")],
    )


async def test_a_request_the_gateway_carried_out_is_closed_one_without_a_time_is_not(
    tmp_path: Path,
) -> None:
    """The gateway's ``erasures`` reply, read through its model over a real socket: an erasure
    after the request closes it; one whose time is unknown closes nothing (never by guess)."""
    store = PortalStore(tmp_path / "portal.db", clock=lambda: T)
    store.request_erasure("baeckerei", "anna", "Anna Weber", None)
    store.request_erasure("huber", "max", "Max Huber", None)
    store.close()

    async def erasures(request: ops.CustomerRequest) -> ops.ErasuresReply:
        assert request.customer is None
        return ops.ErasuresReply(
            erasures=[
                _erasure(1, "baeckerei", "2027-01-15T08:00:05+00:00"),
                _erasure(2, "huber", None),
            ]
        )

    socket = tmp_path / "control.sock"
    server = ControlServer(socket, {"erasures": bind(ops.ERASURES, erasures)})
    await server.start()
    try:
        assert await carried_out(socket) == [("baeckerei", None, T + 5)]
        found = await pending_requests(tmp_path / "portal.db", socket)
    finally:
        await server.close()
    assert [r.customer for r in found] == ["huber"]


async def test_an_erasure_with_a_copy_still_held_elsewhere_closes_nothing(tmp_path: Path) -> None:
    """After a move, an old instance's copy that still holds the customer's data keeps the
    request open: the portal must not say "erased" (nor status drop the installer's to-do)."""
    store = PortalStore(tmp_path / "portal.db", clock=lambda: T)
    store.request_erasure("baeckerei", "anna", "Anna Weber", None)
    store.close()
    held: list[str] = ["hall-a"]

    async def erasures(request: ops.CustomerRequest) -> ops.ErasuresReply:
        at = "2027-01-15T08:00:05+00:00"
        return ops.ErasuresReply(erasures=[_erasure(1, "baeckerei", at, *held)])

    socket = tmp_path / "control.sock"
    server = ControlServer(socket, {"erasures": bind(ops.ERASURES, erasures)})
    await server.start()
    try:
        assert await carried_out(socket) == []
        still = await pending_requests(tmp_path / "portal.db", socket)
        held.clear()  # hall-a cleaned up: the same erasure is now complete
        assert await carried_out(socket) == [("baeckerei", None, T + 5)]
        done = await pending_requests(tmp_path / "portal.db", socket)
    finally:
        await server.close()
    assert [r.customer for r in still] == ["baeckerei"] and done == []
