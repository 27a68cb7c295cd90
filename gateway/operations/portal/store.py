"""The portal's own database, ``portal.db`` in the data directory: accounts, invitations,
sessions, failed logins and lockouts, receipts handed out, and customers' erasure requests.

Separate from the log on purpose: the portal opens the log read-only and never holds the signing
key, so everything it must remember itself lives here. The schema is versioned like the log's
(``PRAGMA user_version``, one migration per version, in order, in one transaction); a database
written by a newer release is refused rather than guessed at.

Every query that reads customer data takes the customer from the session, never from the
request: a row of another customer is simply not found.
"""

from __future__ import annotations

import re
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import GatewayError
from gateway.operations.portal.credentials import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    check_password,
    hash_password,
    new_token,
    token_digest,
    totp_step,
)

__all__ = [
    "LOGIN",
    "Account",
    "ErasureRequest",
    "LoginOutcome",
    "PortalError",
    "PortalStore",
    "Session",
    "pending_erasures",
]

LOGIN = re.compile(r"^[a-z0-9][a-z0-9._@-]{2,63}$")

# Version n's statements take a database at version n-1 to n.
_MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE accounts (
        login TEXT PRIMARY KEY, customer TEXT NOT NULL, name TEXT NOT NULL,
        password TEXT NOT NULL, totp BLOB, created_at REAL NOT NULL, revoked_at REAL);
    CREATE INDEX accounts_customer ON accounts(customer);
    CREATE TABLE invitations (
        digest BLOB PRIMARY KEY, customer TEXT NOT NULL, name TEXT NOT NULL,
        created_at REAL NOT NULL, expires_at REAL NOT NULL, used_at REAL, used_by TEXT);
    CREATE TABLE sessions (
        digest BLOB PRIMARY KEY, login TEXT NOT NULL, customer TEXT NOT NULL,
        csrf TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL);
    CREATE INDEX sessions_login ON sessions(login);
    CREATE TABLE failures (login TEXT NOT NULL, at REAL NOT NULL);
    CREATE INDEX failures_login ON failures(login, at);
    CREATE TABLE lockouts (login TEXT PRIMARY KEY, until REAL NOT NULL);
    CREATE TABLE receipts (
        entry_seq INTEGER PRIMARY KEY, customer TEXT NOT NULL, login TEXT NOT NULL,
        document TEXT NOT NULL, at REAL NOT NULL);
    CREATE TABLE erasure_requests (
        id INTEGER PRIMARY KEY, customer TEXT NOT NULL, login TEXT NOT NULL, by TEXT NOT NULL,
        device TEXT, at REAL NOT NULL);
    """,
    # The same event as a DPV JSON-LD record, handed out beside its signed receipt.
    """
    ALTER TABLE receipts ADD COLUMN record TEXT;
    """,
    # The last TOTP time step a login used: a code is accepted once (RFC 6238 §5.2).
    """
    ALTER TABLE accounts ADD COLUMN totp_step INTEGER;
    """,
    # The number of the customer's newest erasure when a request was sent (NULL: the gateway
    # could not say): only a later one answers it, whatever the clocks said (pending.py).
    """
    ALTER TABLE erasure_requests ADD COLUMN after INTEGER;
    """,
)
SCHEMA_VERSION = len(_MIGRATIONS)


class PortalError(GatewayError):
    """A portal account, invitation or database problem, said for the installer."""


@dataclass(frozen=True, slots=True)
class Account:
    login: str
    customer: str
    name: str
    has_totp: bool
    revoked: bool


@dataclass(frozen=True, slots=True)
class Session:
    login: str
    customer: str
    csrf: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class LoginOutcome:
    """A login attempt's result: a session token, or why not (never which part was wrong)."""

    token: str | None = None
    session: Session | None = None
    locked_until: float | None = None


@dataclass(frozen=True, slots=True)
class ErasureRequest:
    id: int
    customer: str
    login: str
    by: str
    device: str | None
    at: float
    # The customer's newest erasure (its number) when the request was sent, 0: none yet; None:
    # the gateway could not say, and the request's time is compared instead (pending.py).
    after: int | None = None


def _open(path: Path, *, read_only: bool = False) -> sqlite3.Connection:
    uri = f"{path.resolve().as_uri()}?mode={'ro' if read_only else 'rwc'}"
    conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=5000")
    return conn


def _migrate(conn: sqlite3.Connection, path: Path) -> None:
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > SCHEMA_VERSION:
        raise PortalError(
            f"{path}: written by a newer Einblick (schema {version}, this release knows up to "
            f"{SCHEMA_VERSION}); upgrade Einblick or restore the portal database from a backup"
        )
    if version == SCHEMA_VERSION:
        return
    conn.execute("BEGIN IMMEDIATE")
    try:
        for number in range(version, SCHEMA_VERSION):
            for statement in _MIGRATIONS[number].split(";"):
                if statement.strip():
                    conn.execute(statement)
        conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


class PortalStore:
    """``portal.db``: one connection, used under a lock (the portal's request handlers call it
    from worker threads; the CLI from its one thread)."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], float] = time.time,
        lock_after: int = 5,
        lock_window_s: float = 900.0,
        lock_for_s: float = 900.0,
    ) -> None:
        self.path = path
        self._now = clock
        self.lock_after = lock_after
        self.lock_window_s = lock_window_s
        self.lock_for_s = lock_for_s
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = _open(path)
            self._conn.execute("PRAGMA journal_mode=WAL")
            _migrate(self._conn, path)
        except sqlite3.Error as exc:
            raise PortalError(f"{path}: cannot open the portal database: {exc}") from exc
        self._lock = threading.Lock()

    def close(self) -> None:
        self._conn.close()

    def _run(self, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
        with self._lock:
            return [tuple(r) for r in self._conn.execute(sql, params).fetchall()]

    # -- invitations (the CLI) --------------------------------------------------------------
    def invite(self, customer: str, name: str, valid_s: float) -> tuple[str, float]:
        """A one-time invitation token and when it expires (only its digest is stored)."""
        token = new_token()
        now = self._now()
        self._run(
            "INSERT INTO invitations (digest, customer, name, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?)",
            (token_digest(token), customer, name, now, now + valid_s),
        )
        return token, now + valid_s

    def invitation(self, token: str) -> tuple[str, str] | None:
        """(customer, name) of an unused, unexpired invitation; None otherwise."""
        rows = self._run(
            "SELECT customer, name FROM invitations WHERE digest = ? AND used_at IS NULL"
            " AND expires_at > ?",
            (token_digest(token), self._now()),
        )
        return None if not rows else (str(rows[0][0]), str(rows[0][1]))

    def accept(self, token: str, login: str, password: str) -> Account:
        """Use the invitation once: create ``login`` with ``password`` (hashed here)."""
        if not LOGIN.match(login):
            raise PortalError(
                "login: 3 to 64 characters, lower-case letters, digits, '.', '_', '@' or '-'"
            )
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise PortalError(f"password: at least {MIN_PASSWORD} characters")
        hashed = hash_password(password)  # outside the lock: it takes ~50 ms on purpose
        now = self._now()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                row = conn.execute(
                    "SELECT customer, name FROM invitations WHERE digest = ? AND used_at IS NULL"
                    " AND expires_at > ?",
                    (token_digest(token), now),
                ).fetchone()
                if row is None:
                    raise PortalError("this invitation is used up or has expired")
                if conn.execute("SELECT 1 FROM accounts WHERE login = ?", (login,)).fetchone():
                    raise PortalError("this login is taken; choose another")
                conn.execute(
                    "UPDATE invitations SET used_at = ?, used_by = ? WHERE digest = ?",
                    (now, login, token_digest(token)),
                )
                conn.execute(
                    "INSERT INTO accounts (login, customer, name, password, created_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (login, row[0], row[1], hashed, now),
                )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return Account(login, str(row[0]), str(row[1]), False, False)

    # -- accounts --------------------------------------------------------------------------
    def accounts(self, customer: str | None = None) -> list[Account]:
        rows = self._run(
            "SELECT login, customer, name, totp IS NOT NULL, revoked_at IS NOT NULL FROM accounts"
            " WHERE ? IS NULL OR customer = ? ORDER BY login",
            (customer, customer),
        )
        return [Account(str(a), str(b), str(c), bool(d), bool(e)) for a, b, c, d, e in rows]

    def revoke(self, customer: str, login: str | None = None) -> tuple[int, int, int]:
        """Revoke ``customer``'s accounts (or one login): (accounts, sessions, invitations)."""
        now = self._now()
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                which = "customer = ?" + ("" if login is None else " AND login = ?")
                params: tuple[object, ...] = (customer,) if login is None else (customer, login)
                accounts = conn.execute(
                    f"UPDATE accounts SET revoked_at = ? WHERE revoked_at IS NULL AND {which}",
                    (now, *params),
                ).rowcount
                sessions = conn.execute(f"DELETE FROM sessions WHERE {which}", params).rowcount
                invitations = 0
                if login is None:
                    invitations = conn.execute(
                        "UPDATE invitations SET used_at = ?, used_by = '(revoked)'"
                        " WHERE customer = ? AND used_at IS NULL",
                        (now, customer),
                    ).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return accounts, sessions, invitations

    def set_totp(self, login: str, secret: bytes | None) -> None:
        self._run("UPDATE accounts SET totp = ? WHERE login = ?", (secret, login))

    # -- logging in ------------------------------------------------------------------------
    def login(self, login: str, password: str, code: str, session_s: float) -> LoginOutcome:
        """Check a login; after ``lock_after`` failures within ``lock_window_s`` the account is
        locked for ``lock_for_s`` (checked before the password, so a locked account's password
        is not even compared). Unknown logins fail the same way, in the same time."""
        now = self._now()
        rows = self._run(
            "SELECT customer, password, totp, revoked_at, totp_step FROM accounts WHERE login = ?",
            (login,),
        )
        locked = self._run("SELECT until FROM lockouts WHERE login = ? AND until > ?", (login, now))
        if locked:
            return LoginOutcome(locked_until=float(str(locked[0][0])))
        stored = str(rows[0][1]) if rows else _DUMMY
        ok = check_password(password, stored) and bool(rows) and rows[0][3] is None
        secret = rows[0][2] if rows else None
        if ok and isinstance(secret, bytes):
            step = totp_step(secret, code, now)
            ok = step is not None and self._use_totp_step(login, step)
        if not ok:
            return LoginOutcome(locked_until=self._failed(login, now, known=bool(rows)))
        self._run("DELETE FROM failures WHERE login = ?", (login,))
        token = new_token()
        session = Session(login, str(rows[0][0]), new_token(), now + session_s)
        self._run(
            "INSERT INTO sessions (digest, login, customer, csrf, created_at, expires_at)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (token_digest(token), login, session.customer, session.csrf, now, session.expires_at),
        )
        return LoginOutcome(token=token, session=session)

    def _use_totp_step(self, login: str, step: int) -> bool:
        """Mark ``step`` used; False when it (or a later one) already was: a replayed code."""
        with self._lock:
            return (
                self._conn.execute(
                    "UPDATE accounts SET totp_step = ? WHERE login = ?"
                    " AND (totp_step IS NULL OR totp_step < ?)",
                    (step, login, step),
                ).rowcount
                == 1
            )

    def _failed(self, login: str, now: float, *, known: bool) -> float | None:
        """Count a failure (known accounts only: a stranger's made-up logins fill no table);
        lock when the window's count reaches the limit. Returns the lock's end, if any."""
        if not known:
            return None
        self._run("DELETE FROM failures WHERE at < ?", (now - self.lock_window_s,))
        self._run("INSERT INTO failures (login, at) VALUES (?, ?)", (login, now))
        count = int(str(self._run("SELECT count(*) FROM failures WHERE login = ?", (login,))[0][0]))
        if count < self.lock_after:
            return None
        until = now + self.lock_for_s
        self._run("INSERT OR REPLACE INTO lockouts (login, until) VALUES (?, ?)", (login, until))
        self._run("DELETE FROM failures WHERE login = ?", (login,))
        return until

    def session(self, token: str) -> Session | None:
        """The live session of ``token``: unexpired, its account not revoked."""
        rows = self._run(
            "SELECT s.login, s.customer, s.csrf, s.expires_at FROM sessions s"
            " JOIN accounts a ON a.login = s.login"
            " WHERE s.digest = ? AND s.expires_at > ? AND a.revoked_at IS NULL",
            (token_digest(token), self._now()),
        )
        if not rows:
            return None
        login, customer, csrf, expires = rows[0]
        return Session(str(login), str(customer), str(csrf), float(str(expires)))

    def logout(self, token: str) -> None:
        self._run("DELETE FROM sessions WHERE digest = ?", (token_digest(token),))

    def expire(self) -> int:
        """Drop expired sessions, invitations' digests stay (used or not) for the record."""
        with self._lock:
            return self._conn.execute(
                "DELETE FROM sessions WHERE expires_at <= ?", (self._now(),)
            ).rowcount

    # -- what a customer asked for ---------------------------------------------------------
    def keep_receipt(
        self, customer: str, login: str, entry_seq: int, document: str, record: str | None = None
    ) -> None:
        self._run(
            "INSERT OR REPLACE INTO receipts (entry_seq, customer, login, document, at, record)"
            " VALUES (?, ?, ?, ?, ?, ?)",
            (entry_seq, customer, login, document, self._now(), record),
        )

    def receipt(self, customer: str, entry_seq: int) -> str | None:
        rows = self._run(
            "SELECT document FROM receipts WHERE entry_seq = ? AND customer = ?",
            (entry_seq, customer),
        )
        return None if not rows else str(rows[0][0])

    def record(self, customer: str, entry_seq: int) -> str | None:
        """The DPV JSON-LD record kept beside the receipt of ``entry_seq`` (the customer's)."""
        rows = self._run(
            "SELECT record FROM receipts WHERE entry_seq = ? AND customer = ?",
            (entry_seq, customer),
        )
        return None if not rows or rows[0][0] is None else str(rows[0][0])

    def request_erasure(
        self, customer: str, login: str, by: str, device: str | None, *, after: int | None = None
    ) -> int:
        """Store a request; ``after``: the number of the customer's newest erasure now (None:
        not known)."""
        with self._lock:
            cur = self._conn.execute(
                "INSERT INTO erasure_requests (customer, login, by, device, at, after)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (customer, login, by, device, self._now(), after),
            )
            return int(cur.lastrowid or 0)

    def erasure_requests(self, customer: str | None = None) -> list[ErasureRequest]:
        rows = self._run(
            "SELECT id, customer, login, by, device, at, after FROM erasure_requests"
            " WHERE ? IS NULL OR customer = ? ORDER BY id",
            (customer, customer),
        )
        return [_request(row) for row in rows]


# A stored hash that matches nothing: an unknown login costs the same scrypt as a known one,
# so the time a failed login takes does not say whether the login exists.
_DUMMY = hash_password("\x00 no account \x00")


def pending_erasures(path: Path) -> list[ErasureRequest]:
    """Erasure requests customers sent through the portal (for ``einblick status`` and the
    TUI); read-only, and an empty list when there is no portal database."""
    if not path.is_file():
        return []
    conn = _open(path, read_only=True)
    try:
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        if version < 1:
            return []
        # A database the portal has not opened since an upgrade has no ``after`` yet.
        after = "after" if version >= 4 else "NULL"
        rows = conn.execute(
            f"SELECT id, customer, login, by, device, at, {after} FROM erasure_requests ORDER BY id"
        ).fetchall()
    except sqlite3.Error:
        return []
    finally:
        conn.close()
    return [_request(row) for row in rows]


def _request(row: Sequence[object]) -> ErasureRequest:
    i, c, lg, b, d, a, after = row
    return ErasureRequest(
        int(str(i)),
        str(c),
        str(lg),
        str(b),
        None if d is None else str(d),
        float(str(a)),
        None if after is None else int(str(after)),
    )
