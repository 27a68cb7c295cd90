"""portal.db: one-time invitations that expire, sessions that expire, revocation, lockout with
its window, TOTP, and a database from a newer release refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.operations.portal.credentials import (
    check_password,
    hash_password,
    new_totp_secret,
    totp_code,
)
from gateway.operations.portal.store import (
    SCHEMA_VERSION,
    PortalError,
    PortalStore,
    pending_erasures,
)

PASSWORD = "a long enough password"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(tmp_path: Path, clock: Clock) -> PortalStore:
    return PortalStore(
        tmp_path / "portal.db", clock=clock, lock_after=3, lock_window_s=60, lock_for_s=600
    )


def account(store: PortalStore, login: str = "anna", customer: str = "baeckerei") -> None:
    token, _ = store.invite(customer, "Anna", 3600)
    store.accept(token, login, PASSWORD)


def test_an_invitation_works_once_and_only_in_time(store: PortalStore, clock: Clock) -> None:
    token, expires = store.invite("baeckerei", "Anna", 3600)
    assert expires == clock.now + 3600
    assert store.invitation(token) == ("baeckerei", "Anna")
    created = store.accept(token, "anna", PASSWORD)
    assert (created.customer, created.login) == ("baeckerei", "anna")
    with pytest.raises(PortalError, match="used up or has expired"):
        store.accept(token, "anna2", PASSWORD)
    late, _ = store.invite("baeckerei", "Bernd", 3600)
    clock.now += 3601
    assert store.invitation(late) is None
    with pytest.raises(PortalError, match="used up or has expired"):
        store.accept(late, "bernd", PASSWORD)


def test_the_password_is_stored_hashed_never_as_typed(store: PortalStore, tmp_path: Path) -> None:
    account(store)
    raw = (tmp_path / "portal.db").read_bytes() + (tmp_path / "portal.db-wal").read_bytes()
    assert PASSWORD.encode() not in raw
    stored = (
        sqlite3.connect(tmp_path / "portal.db")
        .execute("SELECT password FROM accounts")
        .fetchone()[0]
    )
    assert stored.startswith("scrypt$16384$8$1$") and check_password(PASSWORD, stored)
    assert not check_password("wrong", stored) and not check_password(PASSWORD, "md5$x")


def test_sessions_expire_and_end_with_revocation(store: PortalStore, clock: Clock) -> None:
    account(store)
    outcome = store.login("anna", PASSWORD, "", session_s=60)
    assert outcome.token is not None and outcome.session is not None
    assert store.session(outcome.token) is not None
    clock.now += 61
    assert store.session(outcome.token) is None
    assert store.expire() == 1
    again = store.login("anna", PASSWORD, "", session_s=60)
    assert again.token is not None
    assert store.revoke("baeckerei") == (1, 1, 0)
    assert store.session(again.token) is None
    assert store.login("anna", PASSWORD, "", session_s=60).token is None


def test_failures_lock_the_account_for_a_while(store: PortalStore, clock: Clock) -> None:
    account(store)
    # Failures spread wider than the window never lock.
    for _ in range(4):
        assert store.login("anna", "wrong", "", 60).locked_until is None
        clock.now += 31
    assert store.login("anna", PASSWORD, "", 60).token is not None
    for attempt in range(3):
        outcome = store.login("anna", "wrong", "", 60)
        assert (outcome.locked_until is not None) == (attempt == 2)
    assert store.login("anna", PASSWORD, "", 60).token is None  # locked: right password too
    clock.now += 601
    assert store.login("anna", PASSWORD, "", 60).token is not None
    # Made-up logins lock nothing and store nothing.
    for _ in range(10):
        assert store.login("nobody", "x", "", 60).locked_until is None


def test_totp_is_asked_once_set(store: PortalStore, clock: Clock) -> None:
    account(store)
    secret = new_totp_secret()
    store.set_totp("anna", secret)
    assert store.login("anna", PASSWORD, "", 60).token is None
    assert (
        store.login(
            "anna", PASSWORD, "000000" if totp_code(secret, clock.now) != "000000" else "111111", 60
        ).token
        is None
    )
    assert store.login("anna", PASSWORD, totp_code(secret, clock.now), 60).token is not None


def test_logins_are_checked_and_unique(store: PortalStore) -> None:
    account(store)
    token, _ = store.invite("baeckerei", "Bernd", 3600)
    with pytest.raises(PortalError, match="taken"):
        store.accept(token, "anna", PASSWORD)
    with pytest.raises(PortalError, match="3 to 64 characters"):
        store.accept(token, "<script>", PASSWORD)
    with pytest.raises(PortalError, match="at least 10"):
        store.accept(token, "bernd", "short")
    assert store.invitation(token) == ("baeckerei", "Bernd")  # a refused try does not use it


def test_a_database_from_a_newer_release_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "portal.db"
    PortalStore(path).close()
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(PortalError, match="newer Einblick"):
        PortalStore(path)


def test_receipts_and_requests_are_the_customers_own(store: PortalStore) -> None:
    store.keep_receipt("baeckerei", "anna", 17, '{"receipt": {}}')
    assert store.receipt("baeckerei", 17) == '{"receipt": {}}'
    assert store.receipt("nachbar", 17) is None
    assert store.record("baeckerei", 17) is None  # kept without a record
    store.keep_receipt("baeckerei", "anna", 18, '{"receipt": {}}', '{"@context": {}}')
    assert store.record("baeckerei", 18) == '{"@context": {}}'
    assert store.record("nachbar", 18) is None
    store.request_erasure("baeckerei", "anna", "Anna", None)
    assert [r.customer for r in store.erasure_requests("baeckerei")] == ["baeckerei"]
    assert store.erasure_requests("nachbar") == []


def test_hashes_differ_for_one_password() -> None:
    assert hash_password(PASSWORD) != hash_password(PASSWORD)


def test_requests_in_a_database_from_before_the_erasure_numbers_read_and_migrate(
    tmp_path: Path,
) -> None:
    """A request stored before requests kept the newest erasure's number reads without one (it
    is compared by time, as before); the portal's next start adds the column and keeps it."""
    path = tmp_path / "portal.db"
    store = PortalStore(path, clock=lambda: 1_800_000_000.0)
    store.request_erasure("baeckerei", "anna", "Anna Weber", None)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE erasure_requests DROP COLUMN after")
    conn.execute("PRAGMA user_version=3")
    conn.close()
    [old] = pending_erasures(path)
    assert (old.customer, old.after) == ("baeckerei", None)
    store = PortalStore(path)
    store.request_erasure("baeckerei", "anna", "Anna Weber", None, after=4)
    assert [r.after for r in store.erasure_requests("baeckerei")] == [None, 4]
    store.close()
    assert [r.after for r in pending_erasures(path)] == [None, 4]
