"""The names a customer's rows show: their own devices' display names (never another
customer's), the recipients' from the configuration, refreshed when a policy file changes, and
the ids when a policy does not load."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

from gateway.log.results import EntryRow
from gateway.operations.portal.names import NameBook
from gateway.operations.portal.rows import row_view
from tests.portal.site import CUSTOMER, OTHER, OTHER_POLICY, POLICY


def book(tmp_path: Path, check_s: float = 0.0) -> NameBook:
    (tmp_path / "berg.yaml").write_text(POLICY, encoding="utf-8")
    (tmp_path / "sonne.yaml").write_text(OTHER_POLICY, encoding="utf-8")
    return NameBook(tmp_path, {"energy-provider": "Stadtwerke Energiedienst"}, check_s)


def test_a_customer_gets_their_own_device_names_only(tmp_path: Path) -> None:
    names = book(tmp_path).names(CUSTOMER)
    assert names.devices == {"room-1": "Meeting room"}
    assert names.device("stall-geheim-7") == "stall-geheim-7"  # theirs: the id, no name
    assert names.recipient("energy-provider") == "Stadtwerke Energiedienst"
    assert book(tmp_path).names(OTHER).devices == {"stall-geheim-7": "Stall GEHEIM"}


def test_a_changed_policy_is_read_again_and_a_broken_one_shows_ids(tmp_path: Path) -> None:
    names = book(tmp_path)
    first = names.names(CUSTOMER)
    assert first.device("room-1") == "Meeting room"
    path = tmp_path / "berg.yaml"
    path.write_text(POLICY.replace("name: Meeting room", "name: Besprechungsraum"), "utf-8")
    os.utime(path, (1, 2_000_000_000))
    again = names.names(CUSTOMER)
    assert again.device("room-1") == "Besprechungsraum"
    assert again.version != first.version  # rows rendered with the old name are not reused
    path.write_text("einblick_policy: 1\ncustomer: [", encoding="utf-8")
    os.utime(path, (1, 2_000_000_100))
    assert names.names(CUSTOMER).device("room-1") == "room-1"


def test_the_files_are_looked_at_once_per_check_interval(tmp_path: Path) -> None:
    names = book(tmp_path, check_s=3600.0)
    first = names.names(CUSTOMER)
    path = tmp_path / "berg.yaml"
    path.write_text(POLICY.replace("name: Meeting room", "name: Besprechungsraum"), "utf-8")
    os.utime(path, (1, 2_000_000_000))
    # Within the interval the book answers from memory: the same names, no directory listing.
    assert names.names(CUSTOMER) is first and first.device("room-1") == "Meeting room"


def test_a_row_shows_the_names_and_keeps_the_id(tmp_path: Path) -> None:
    row = EntryRow(
        seq=7,
        at=datetime(2026, 12, 3, tzinfo=UTC),
        customer=CUSTOMER,
        index=3,
        device="room-1",
        recipient="energy-provider",
        kind="decision",
        outcome="shared",
        text_de="geteilt",
        text_en="shared",
    )
    view = row_view(row, "en", None, book(tmp_path).names(CUSTOMER))
    assert (view.device, view.device_id) == ("Meeting room", "room-1")
    assert view.recipient == "Stadtwerke Energiedienst"
