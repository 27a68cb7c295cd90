"""Erasure requests from the portal that the installer has not carried out: open until an
erasure of the customer's whole data at or after the request; all of them when the gateway
cannot say; each said as the command to run."""

from __future__ import annotations

from pathlib import Path

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
