"""Erasure requests from the portal that the installer has not carried out: open until an
erasure of the customer's whole data at or after the request; all of them when the gateway
cannot say; each said as the command to run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from gateway.operations import control_model as ops
from gateway.operations.control import ControlServer, bind
from gateway.operations.portal.pending import (
    Carried,
    carried_out,
    newest_erasure,
    open_requests,
    pending_requests,
    render_requests,
)
from gateway.operations.portal.store import ErasureRequest, PortalStore

T = 1_800_000_000.0


def request(number: int, customer: str, at: float) -> ErasureRequest:
    return ErasureRequest(number, customer, "anna", "Anna Weber", None, at)


def test_a_request_sent_while_the_gateway_could_not_say_is_open_until_a_whole_erasure_after_it() -> (
    None
):
    asked = [request(1, "baeckerei", T), request(2, "huber", T)]
    assert open_requests(asked, []) == asked
    assert open_requests(asked, [Carried("baeckerei", None, T - 1, 1)]) == asked  # before it
    assert open_requests(asked, [Carried("baeckerei", "oven-1", T + 5, 1)]) == asked  # a device
    assert open_requests(asked, [Carried("baeckerei", None, T, 1)]) == [asked[1]]
    assert open_requests(asked, [Carried("huber", None, T + 60, 1)]) == [asked[0]]


def test_a_request_is_answered_only_by_an_erasure_numbered_after_it_whatever_the_clocks_say() -> (
    None
):
    """Erasure 1 on 3 December; the box, reset without a real-time clock, believes it is
    1 December when the customer asks again. By the clocks erasure 1 came after the request, and
    the portal said "your data on this box has been erased since"; by number it came before."""
    asked = dataclasses.replace(request(7, "baeckerei", T - 2 * 86400), after=1)
    first = Carried("baeckerei", None, T, 1)
    assert open_requests([asked], [first]) == [asked]
    assert open_requests([asked], [first, Carried("baeckerei", "oven-1", T + 9, 2)]) == [asked]
    assert open_requests([asked], [first, Carried("baeckerei", None, T - 3 * 86400, 2)]) == []


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
        assert await carried_out(socket) == [Carried("baeckerei", None, T + 5, 1)]
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
        assert await carried_out(socket) == [Carried("baeckerei", None, T + 5, 1)]
        done = await pending_requests(tmp_path / "portal.db", socket)
    finally:
        await server.close()
    assert [r.customer for r in still] == ["baeckerei"] and done == []


async def test_a_request_keeps_the_newest_erasure_the_gateway_had_made(tmp_path: Path) -> None:
    """What the portal stores with a request (pages.erasure): the gateway's newest erasure of
    the customer, counted also while a copy elsewhere is pending (it began before the request);
    an erasure made before it, although dated after it by a clock set back, leaves it open."""

    async def erasures(request: ops.CustomerRequest) -> ops.ErasuresReply:
        at = "2027-01-15T08:00:05+00:00"  # later than the request below, by the clocks
        return ops.ErasuresReply(
            erasures=[_erasure(1, "baeckerei", at), _erasure(2, "baeckerei", at, "hall-a")]
        )

    socket = tmp_path / "control.sock"
    server = ControlServer(socket, {"erasures": bind(ops.ERASURES, erasures)})
    await server.start()
    try:
        after = await newest_erasure(socket, "baeckerei")
        store = PortalStore(tmp_path / "portal.db", clock=lambda: T - 86400)
        store.request_erasure("baeckerei", "anna", "Anna Weber", None, after=after)
        assert [r.after for r in store.erasure_requests("baeckerei")] == [2]
        store.close()
        found = await pending_requests(tmp_path / "portal.db", socket)
    finally:
        await server.close()
    assert [r.customer for r in found] == ["baeckerei"]
    assert await newest_erasure(tmp_path / "no-gateway.sock", "baeckerei") is None
