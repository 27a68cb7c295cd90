"""Pseudonymisation keys: made once per customer and recipient, written with the batch that used
them (or kept pending if it rolled back), loaded again after a restart, destroyed on erasure."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.log.migrations import migrate
from gateway.messages.pseudonyms import Keyring


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(tmp_path / "einblick.db", isolation_level=None)
    migrate(conn)
    return conn


def test_one_key_per_customer_and_recipient_kept_across_a_restart(
    conn: sqlite3.Connection,
) -> None:
    ring = Keyring()
    first = ring.key("werk-nord", "cloud-a")
    assert first is not None and len(first) == 32
    assert ring.key("werk-nord", "cloud-a") == first
    other = ring.key("werk-nord", "cloud-b")
    assert other != first
    Keyring.persist(conn, ring.take_new(), 1)
    assert ring.take_new() == {}  # written: nothing pending
    again = Keyring()
    again.load(conn)
    assert again.key("werk-nord", "cloud-a") == first
    assert again.take_new() == {}  # known, not made anew


def test_a_rolled_back_batch_keeps_its_new_keys_pending(conn: sqlite3.Connection) -> None:
    ring = Keyring()
    key = ring.key("werk-nord", "cloud-a")
    new = ring.take_new()
    ring.restore(new)  # the batch that was to write them rolled back
    assert ring.take_new() == {("werk-nord", "cloud-a"): key}


def test_erasure_destroys_only_that_customers_keys(conn: sqlite3.Connection) -> None:
    ring = Keyring()
    gone = ring.key("werk-nord", "cloud-a")
    kept = ring.key("werk-sued", "cloud-a")
    Keyring.persist(conn, ring.take_new(), 1)
    ring.key("werk-nord", "cloud-b")  # made, not yet written
    assert ring.erase(conn, "werk-nord") == 1
    assert ring.take_new() == {}  # the pending one is gone too
    reloaded = Keyring()
    reloaded.load(conn)
    assert reloaded.key("werk-sued", "cloud-a") == kept
    assert ring.key("werk-nord", "cloud-a") != gone  # a new key: old pseudonyms stay unlinkable
