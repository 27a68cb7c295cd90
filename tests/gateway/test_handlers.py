"""Every control op against a running gateway, read back through its reply model: what each
handler answers comes from the part that owns it (policies, consents, registry, erasures,
signatures)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from gateway.operations import control_model as ops
from gateway.operations.backup_snapshots import SNAPSHOT_GLOB
from gateway.operations.control import ControlError, ask
from gateway.operations.handlers import erasure_records
from gateway.rights.erasure import PendingCopy
from gateway.rights.erasure_book import ErasureRow
from gateway.rights.receipts import verify_receipt
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import BAKERY, TRACKER

BAKERY_ID = "baeckerei-schmidt"


async def test_each_op_answers_from_the_part_that_owns_it(tmp_path: Path) -> None:
    policies = {"bakery.yaml": BAKERY, "fleet.yaml": TRACKER, "broken.yaml": "customer: [\n"}
    devices = [(BAKERY_ID, "oven-1", "Backofen 1")]
    async with running_gateway(tmp_path, policies, devices) as h:
        socket = h.gateway.config.control_socket

        status = await ask(socket, ops.STATUS)
        assert status.instance == h.gateway.config.instance

        listed = await ask(socket, ops.POLICIES)
        customers = {c.customer: c for c in listed.customers}
        assert set(customers) >= {BAKERY_ID, "spedition-meier"}
        bakery = customers[BAKERY_ID]
        assert [g.id for g in bakery.grants] == ["maintenance"]
        assert bakery.grants[0].recipient_name == "Ofenbau Müller GmbH – Wartungscloud"
        assert set(bakery.describe) == {"de", "en"} and bakery.error is None
        only = await ask(socket, ops.POLICIES, ops.CustomerRequest(customer="spedition-meier"))
        assert [c.customer for c in only.customers] == ["spedition-meier"]

        withdrawn = await ask(
            socket,
            ops.WITHDRAW,
            ops.ConsentRequest(customer="spedition-meier", grant="routing", by="Jan Meier"),
        )
        signed = verify_receipt(dict(withdrawn.receipt), h.gateway.signer.public)
        assert withdrawn.entry_seq > 0 and signed.fields["by"] == "Jan Meier"
        again = await ask(socket, ops.POLICIES, ops.CustomerRequest(customer="spedition-meier"))
        assert again.customers[0].grants[0].withdrawn

        devices_now = await ask(
            socket,
            ops.RELOAD_DEVICES,
            ops.ReloadDevicesRequest(customer=BAKERY_ID, device="oven-1"),
        )
        assert devices_now.devices == 1 and devices_now.not_admitted == []
        assert devices_now.device is not None and devices_now.device.state == "decided"
        plain = await ask(socket, ops.RELOAD_DEVICES)
        assert plain.device is None

        assert (await ask(socket, ops.ERASURES)).erasures == []
        signed = await ask(socket, ops.CHECKPOINT)
        assert signed.signed_at > 0
        snapshot = await ask(socket, ops.SNAPSHOT)
        copy = Path(snapshot.path)
        assert copy.parent == h.gateway.config.data_path and copy.match(SNAPSHOT_GLOB)
        assert (await asyncio.to_thread(copy.stat)).st_size > 0
        assert snapshot.signed_at >= signed.signed_at
        await asyncio.to_thread(copy.unlink)

        reloaded = await ask(socket, ops.RELOAD)
        assert reloaded.changes == []

        # An erasure must say at whose request: refused by the erasure, not by the socket.
        try:
            await ask(socket, ops.FORGET, ops.ForgetRequest(customer=BAKERY_ID))
        except ControlError as exc:
            assert "at whose request" in str(exc)
        else:
            raise AssertionError("an erasure without --by was carried out")


def _row(erasure: int, customer: str) -> ErasureRow:
    return {
        "erasure": erasure,
        "customer": customer,
        "device": None,
        "at": "2027-01-15T08:00:05+00:00",
        "requested_by": "Anna Weber",
        "entry_seq": erasure,
        "content_erased": 1,
        "queued_erased": 0,
        "keys_destroyed": 0,
        "retained_cleared": 0,
        "notices": [],
    }


async def test_an_old_copy_that_cannot_be_looked_at_is_pending_for_its_customer_alone() -> None:
    """The erasures answer looks at each customer's old copies once; one whose copy cannot be
    looked at (a directory not searchable) is pending with why, and the others are answered."""
    looked: list[str] = []

    async def held_copies(customer: str) -> tuple[PendingCopy, ...]:
        looked.append(customer)
        if customer == "werk-a":
            raise PermissionError(13, "Permission denied")
        return ()

    rows = [_row(1, "werk-a"), _row(2, "baeckerei"), _row(3, "werk-a")]
    records = await erasure_records(rows, held_copies)
    assert sorted(looked) == ["baeckerei", "werk-a"]  # once per customer
    pending = {r.erasure: [(c.instance, c.why) for c in r.copies_pending] for r in records}
    why = "whether an old copy is left cannot be looked at (Permission denied)"
    assert pending == {1: [("(unknown)", why)], 2: [], 3: [("(unknown)", why)]}
