"""Consent and erasure get narrow collaborators, not the gateway; withdrawals have one owner."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest

from gateway.config import Config
from gateway.log.keys import Signer
from gateway.log.writer import LogWriter
from gateway.messages.pseudonyms import Keyring
from gateway.messages.store import Store
from gateway.rights.consent import ConsentBook, ConsentParts
from policies.decision import Reason
from policies.engine import Engine
from tests.policies.conftest import compile_text

CUSTOMER = "berg-partner"
RECIPIENT = "energy-provider"


def policy(version: str, *grants: str) -> str:
    """Berg & Partner's policy with ``grants`` (each sharing the room's occupancy)."""
    listed = "".join(
        f"""
  - id: {grant}
    recipient: {RECIPIENT}
    purpose: {{de: "Heizung", en: "Heating"}}
    legal_basis: consent
    consent: {{given_by: "Dr. Miriam Berg", given_at: 2026-03-01T09:00:00Z}}
    devices: [room-1]
    topic: "building/{{device}}"
    fields:
      occupancy: keep
"""
        for grant in grants
    )
    return f"""
einblick_policy: 1
customer: {CUSTOMER}
name: Berg & Partner
# version {version}
language: en
devices:
  - id: room-1
    name: Meeting room
    kind: occupancy
    topics:
      - pattern: "zigbee2mqtt/room-1"
        stream: telemetry
grants:{listed or " []"}
"""


@dataclass
class Box:
    """One start of a gateway, as far as consent is concerned: its engine and its book."""

    engine: Engine
    book: ConsentBook


@dataclass
class Site:
    """A log and its signer that several starts of a gateway share; ``now`` is their clock."""

    store: Store
    signer: Signer
    writer: LogWriter
    now: datetime

    async def start(self, text: str) -> Box:
        engine = Engine([compile_text(text, {RECIPIENT: "Stadtwerke"})], Keyring())
        writer = self.writer
        book = ConsentBook(
            ConsentParts(
                store=self.store,
                engine=lambda: engine,
                log_writer=lambda: writer,
                signer=self.signer,
                config=lambda: Config(einblick_config=1, instance="unit"),
                clock=lambda: self.now,
            )
        )
        await self.store.read(book.load)
        return Box(engine, book)


S = TypeVar("S", bound=Site)


@contextlib.asynccontextmanager
async def open_site(tmp_path: Path, kind: type[S]) -> AsyncIterator[S]:
    """A fresh log with a real key, the clock at 2 March 2026 09:00 in Berlin."""
    store = Store(tmp_path / "einblick.db")
    await store.open()
    signer = Signer.generate()
    writer = await store.read(lambda conn: LogWriter(conn, signer, "unit"))
    try:
        yield kind(store, signer, writer, datetime(2026, 3, 2, 8, 0, tzinfo=UTC))
    finally:
        await store.close()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(tmp_path, Site) as opened:
        yield opened


def test_rights_modules_do_not_import_the_gateway() -> None:
    """A fresh interpreter: importing consent and erasure must not pull in the composition
    root (the import circle app <-> consent <-> erasure)."""
    probe = (
        "import sys, gateway.rights.consent, gateway.rights.erasure; "
        "print(sorted(m for m in sys.modules if m == 'gateway.app'))"
    )
    found = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert found == "[]"


async def test_the_grant_view_asks_the_engine(site: Site) -> None:
    """One owner: a withdrawal the engine holds is what the book reports, whoever made it."""
    box = await site.start(policy("1", "demand-heating"))
    assert not box.book.is_withdrawn(CUSTOMER, "demand-heating")
    box.engine.withdraw(CUSTOMER, "demand-heating", site.now)
    assert box.book.is_withdrawn(CUSTOMER, "demand-heating")
    box.engine.give(CUSTOMER, "demand-heating", site.now + timedelta(seconds=1))
    assert not box.book.is_withdrawn(CUSTOMER, "demand-heating")


async def test_a_recorded_withdrawal_returns_with_its_grant(site: Site) -> None:
    """Withdrawn in one run; the next run's policy has no such grant; a later version brings
    it back: it releases nothing, because the recorded withdrawal still holds."""
    first = await site.start(policy("1", "demand-heating"))
    await first.book.act("withdraw", CUSTOMER, "demand-heating", "Dr. Miriam Berg")
    withdrawn = first.engine.still_allowed(CUSTOMER, "demand-heating", site.now)
    assert withdrawn == Reason("withdrawn")

    second = await site.start(policy("2"))  # restart: the grant is gone from the file
    assert second.engine.withdrawn() == {}
    second.engine.replace(compile_text(policy("3", "demand-heating"), {RECIPIENT: "Stadtwerke"}))
    second.book.restore(CUSTOMER)
    assert second.engine.still_allowed(CUSTOMER, "demand-heating", site.now) == withdrawn
    assert second.book.is_withdrawn(CUSTOMER, "demand-heating")


async def test_a_restart_restores_withdrawals_with_one_query(site: Site) -> None:
    first = await site.start(policy("1", "demand-heating", "billing"))
    await first.book.act("withdraw", CUSTOMER, "demand-heating", "Dr. Miriam Berg")
    await first.book.act("withdraw", CUSTOMER, "billing", "Dr. Miriam Berg")
    site.now += timedelta(minutes=1)
    await first.book.act("give", CUSTOMER, "billing", "Dr. Miriam Berg")

    second = await site.start(policy("1", "demand-heating", "billing"))
    assert set(second.engine.withdrawn()) == {(CUSTOMER, "demand-heating")}
    assert second.book.is_withdrawn(CUSTOMER, "demand-heating")
    assert not second.book.is_withdrawn(CUSTOMER, "billing")
    assert second.engine.still_allowed(CUSTOMER, "billing", site.now) is None
