"""Fixtures for the log tests: a real SQLite file, a real Ed25519 key, realistic drafts."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gateway.log.entry import EntryDraft
from gateway.log.keys import Signer
from gateway.log.schema import configure_writer, ensure_schema
from gateway.log.writer import LogWriter

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
ORIGIN = "gw-test"


def make_draft(i: int, customer: str | None = "baeckerei-schmidt", **changes: object) -> EntryDraft:
    device = f"oven-{i % 3}"
    withheld = i % 4 == 3
    payload = b'{"temp":%d.5,"badge":"B-%04d"}' % (180 + i % 7, i)
    draft = EntryDraft(
        kind="decision",
        at=T0 + timedelta(milliseconds=10 * i),
        customer=customer,
        device=device,
        recipient="wartung-gmbh",
        outcome="withheld" if withheld else "shared",
        grant=None if withheld else "maintenance-temps",
        policy_version="sha256:abc123",
        purpose={"de": "Wartung", "en": "maintenance"},
        legal_basis=None if withheld else "contract",
        topic=None if withheld else f"schmidt/{device}/telemetry",
        content=None if withheld else payload,
        source_digest=hashlib.sha256(payload).digest(),
        shared=() if withheld else ("temp",),
        altered=(),
        withheld=("badge",) if not withheld else ("temp", "badge"),
        reason="no_grant" if withheld else None,
        reason_params={},
        text_de=f"{device}: Temperatur an Wartung GmbH geteilt (Wartung, Vertrag).",
        text_en=f"{device}: temperature shared with Wartung GmbH (maintenance, contract).",
    )
    return replace(draft, **changes)  # type: ignore[arg-type]


def fresh_db(path: Path) -> sqlite3.Connection:
    """A log database opened as the writer's connection is (no writer on it yet)."""
    conn = sqlite3.connect(path, isolation_level=None)
    configure_writer(conn)
    ensure_schema(conn)
    return conn


class Log:
    """A writer on a real database file, committing like the gateway's writer thread."""

    def __init__(self, path: Path, signer: Signer, origin: str = ORIGIN) -> None:
        self.path = path
        self.conn = fresh_db(path)
        self.signer = signer
        self.writer = LogWriter(self.conn, signer, origin)

    def write(self, drafts: list[EntryDraft], *, checkpoint: bool = True) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.writer.append(drafts)
        if checkpoint:
            self.writer.checkpoint(max(d.at for d in drafts) + timedelta(milliseconds=1))
        self.conn.execute("COMMIT")
        self.writer.committed()

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def signer(tmp_path: Path) -> Signer:
    return Signer.generate(tmp_path / "log.key")


@pytest.fixture
def log(tmp_path: Path, signer: Signer) -> Iterator[Log]:
    opened = Log(tmp_path / "log.db", signer)
    yield opened
    opened.close()
