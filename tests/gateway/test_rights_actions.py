"""A customer's rights over a grant (gateway/rights/consent.py): consent is withdrawn, a grant on
legitimate interests is objected to, any grant can be restricted; each with its own words, entry,
receipt and DPV record; repeating one writes nothing and says so; each names its person."""

from __future__ import annotations

import asyncio
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
import rdflib

from gateway.config import Config
from gateway.messages.pseudonyms import Keyring
from gateway.rights.consent import ConsentBook, ConsentError, ConsentParts
from gateway.rights.receipts import verify_receipt
from policies.decision import Reason
from policies.engine import Engine
from policies.onset import stopped_applying
from tests.gateway.harness import running_gateway
from tests.gateway.test_collaborators import Site as ConsentSite
from tests.gateway.test_collaborators import open_site
from tests.policies.conftest import compile_text

CUSTOMER = "berg-partner"
RECIPIENT = "energy-provider"
POLICY = f"""
einblick_policy: 1
customer: {CUSTOMER}
name: Berg & Partner
language: en
devices:
  - id: room-1
    name: Meeting room
    kind: occupancy
    topics:
      - pattern: "zigbee2mqtt/room-1"
        stream: telemetry
grants:
  - id: heating
    recipient: {RECIPIENT}
    purpose: {{de: "Heizung nach Belegung", en: "Heating by occupancy"}}
    legal_basis: consent
    consent: {{given_by: "Dr. Miriam Berg", given_at: 2026-03-01T09:00:00Z}}
    devices: [room-1]
    fields:
      occupancy: keep
  - id: billing
    recipient: {RECIPIENT}
    purpose: {{de: "Abrechnung", en: "Billing"}}
    legal_basis: contract
    devices: [room-1]
    fields:
      occupancy: keep
  - id: statistics
    recipient: {RECIPIENT}
    purpose: {{de: "Netzstatistik", en: "Grid statistics"}}
    legal_basis: legitimate_interests
    devices: [room-1]
    fields:
      occupancy: keep
"""
DPV = rdflib.Namespace("https://w3id.org/dpv#")
GDPR = rdflib.Namespace("https://w3id.org/dpv/legal/eu/gdpr#")


def as_rdf(record: object) -> rdflib.Graph:
    """The record as a DPO's RDF tools read it (JSON-LD with its inline context, no fetch)."""
    with warnings.catch_warnings():
        # rdflib 7's JSON-LD parser builds a ConjunctiveGraph inside, which it now deprecates.
        warnings.filterwarnings("ignore", "ConjunctiveGraph is deprecated", DeprecationWarning)
        return rdflib.Graph().parse(data=orjson.dumps(record).decode(), format="json-ld")


@dataclass
class Site(ConsentSite):
    async def started(self) -> tuple[Engine, ConsentBook]:
        """A start of the gateway under ``POLICY``: its engine and its consent book."""
        box = await self.start(POLICY)
        return box.engine, box.book

    async def kinds(self) -> list[str]:
        def job(conn: sqlite3.Connection) -> list[str]:
            docs = conn.execute(
                "SELECT b.doc FROM entries e JOIN bodies b ON b.id = e.body_id ORDER BY e.seq"
            ).fetchall()
            return [orjson.loads(doc)["kind"] for (doc,) in docs]

        return await self.store.read(job)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async with open_site(tmp_path, Site) as opened:
        yield opened


async def test_a_contract_grant_cannot_be_withdrawn_and_the_refusal_says_what_can(
    site: Site,
) -> None:
    engine, book = await site.started()
    with pytest.raises(ConsentError) as caught:
        await book.act("withdraw", CUSTOMER, "billing", "Dr. Miriam Berg")
    assert "rests on contract, not consent: there is no consent to withdraw" in str(caught.value)
    assert "'restrict'" in str(caught.value)
    assert engine.still_allowed(CUSTOMER, "billing", site.now) is None
    assert await site.kinds() == []  # no "consent withdrawn" entry, no receipt
    with pytest.raises(ConsentError, match=r"Art\. 21 gives a right to object only"):
        await book.act("object", CUSTOMER, "billing", "Dr. Miriam Berg")


async def test_an_objection_has_its_own_reason_entry_receipt_and_record(site: Site) -> None:
    engine, book = await site.started()
    answer = await book.act("object", CUSTOMER, "statistics", "Dr. Miriam Berg")
    assert answer.changed is True and answer.kind == "objection"
    assert engine.still_allowed(CUSTOMER, "statistics", site.now) == Reason("objected")
    assert engine.still_allowed(CUSTOMER, "heating", site.now) is None
    assert await site.kinds() == ["objection"]
    signed = verify_receipt(orjson.dumps(answer.receipt), site.signer.public)
    assert (signed.fields["type"], signed.fields["article"], signed.fields["by"]) == (
        "objection",
        "GDPR Art. 21(1)",
        "Dr. Miriam Berg",
    )
    graph = as_rdf(answer.record)
    (activity,) = graph.subjects(rdflib.RDF.type, DPV.RightExerciseActivity)
    assert graph.value(activity, DPV.hasRight) == GDPR.A21
    assert graph.value(activity, DPV.hasLegalBasis) == GDPR["A6-1-f"]
    # A restart restores the objection with its reason, not as a consent withdrawn.
    engine2, book2 = await site.started()
    assert engine2.still_allowed(CUSTOMER, "statistics", site.now) == Reason("objected")
    assert book2.held_by(CUSTOMER, "statistics") == "objection"
    site.now += timedelta(minutes=1)
    lifted = await book2.act("lift", CUSTOMER, "statistics", "Dr. Miriam Berg")
    assert lifted.kind == "objection_lifted"
    assert engine2.still_allowed(CUSTOMER, "statistics", site.now) is None


async def test_a_restriction_applies_to_a_contract_grant(site: Site) -> None:
    engine, book = await site.started()
    answer = await book.act("restrict", CUSTOMER, "billing", "Jana Berg")
    assert answer.kind == "restriction"
    assert engine.still_allowed(CUSTOMER, "billing", site.now) == Reason("restricted")
    with pytest.raises(ConsentError, match="there is no consent to give"):
        await book.act("give", CUSTOMER, "billing", "Jana Berg")
    site.now += timedelta(minutes=1)
    assert (await book.act("lift", CUSTOMER, "billing", "Jana Berg")).kind == ("restriction_lifted")
    assert engine.still_allowed(CUSTOMER, "billing", site.now) is None


async def test_repeating_an_action_writes_nothing_and_says_so(site: Site) -> None:
    _, book = await site.started()
    first = await book.act("withdraw", CUSTOMER, "heating", "Dr. Miriam Berg")
    site.now += timedelta(minutes=5)
    again = await book.act("withdraw", CUSTOMER, "heating", "Jana Berg")
    assert again.changed is False and again.receipt is None
    assert again.entry_seq == first.entry_seq
    assert again.message == (
        "already done: consent withdrawn of grant 'heating' by Dr. Miriam Berg at "
        f"2026-03-02T08:00:00+00:00 (log entry {first.entry_seq}); nothing changed"
    )
    assert await site.kinds() == ["consent_withdrawn"]  # one signed entry, not two
    given = await book.act("give", CUSTOMER, "heating", "Dr. Miriam Berg")
    assert given.changed is True
    assert (await book.act("give", CUSTOMER, "heating", "Dr. Miriam Berg")).changed is False
    assert await site.kinds() == ["consent_withdrawn", "consent_given"]


async def test_every_action_names_its_person(site: Site) -> None:
    _, book = await site.started()
    with pytest.raises(ConsentError, match="say who takes this action"):
        await book.act("withdraw", CUSTOMER, "heating", "  ")
    assert await site.kinds() == []


async def test_a_consent_withdrawal_comes_with_an_iso_27560_record_in_dpv(site: Site) -> None:
    _, book = await site.started()
    answer = await book.act("withdraw", CUSTOMER, "heating", "Dr. Miriam Berg")
    graph = as_rdf(answer.record)
    (record,) = graph.subjects(rdflib.RDF.type, DPV.ConsentRecord)
    assert graph.value(record, DPV.hasConsentStatus) == DPV.ConsentWithdrawn
    assert graph.value(record, DPV.hasLegalBasis) == GDPR["A6-1-a"]
    recipient = graph.value(record, DPV.hasRecipient)
    assert str(graph.value(recipient, DPV.hasName)) == "Stadtwerke"
    subject = graph.value(record, DPV.hasDataSubject)
    assert str(graph.value(subject, DPV.hasName)) == "Berg & Partner"
    purposes = {str(o) for o in graph.objects(graph.value(record, DPV.hasPurpose), None)}
    assert "Heating by occupancy" in purposes


async def einblick_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "gateway", *args],
        capture_output=True,
        text=True,
        check=False,
    )


async def test_the_cli_offers_the_same_actions_through_the_control_api(tmp_path: Path) -> None:
    async with running_gateway(
        tmp_path, {"berg.yaml": POLICY}, [(CUSTOMER, "room-1", "Meeting room")]
    ) as h:
        config = str(h.directory / "einblick.yaml")
        who = ["--config", config, "--customer", CUSTOMER, "--by", "Dr. Miriam Berg"]
        refused = await einblick_cli("consent", "withdraw", *who, "--grant", "billing")
        assert refused.returncode != 0 and refused.stdout == ""
        assert "rests on contract, not consent" in refused.stderr
        assert "Traceback" not in refused.stderr
        record = tmp_path / "objection.jsonld"
        objected = await einblick_cli(
            "consent", "object", *who, "--grant", "statistics", "--record", str(record)
        )
        assert objected.returncode == 0, objected.stderr
        receipt = orjson.loads(objected.stdout)
        assert receipt["receipt"]["type"] == "objection"
        assert receipt["receipt"]["by"] == "Dr. Miriam Berg"
        graph = as_rdf(orjson.loads(record.read_bytes()))
        assert (None, DPV.hasRight, GDPR.A21) in graph
        again = await einblick_cli("consent", "object", *who, "--grant", "statistics")
        assert again.returncode == 0 and again.stdout == ""  # no second receipt
        assert "already done: objection of grant 'statistics' by Dr. Miriam Berg" in again.stderr
        nameless = await einblick_cli(
            "consent", "restrict", "--config", config, "--customer", CUSTOMER, "--grant", "billing"
        )
        assert nameless.returncode == 2 and "--by" in nameless.stderr
        assert h.gateway.consents.entries == 1
        report = await einblick_cli("report", "--config", config, "--customer", CUSTOMER)
        assert report.returncode == 0, report.stderr
        # The access report (Art. 15) lists the objection in its own words.
        assert "## Consents, objections and restrictions" in report.stdout
        section = report.stdout.split("## Consents, objections and restrictions", 1)[1]
        assert (
            "Dr. Miriam Berg objected to “statistics” for Stadtwerke Energiedienst (GDPR Art. 21)"
            in section
        ), section[:600]


async def test_a_restarted_gateway_knows_when_a_hold_ended_for_the_send_time_check(
    site: Site,
) -> None:
    # A row queued while "statistics" was restricted was decided without it; after a restart,
    # the engine must still know the restriction ended later (policies/onset.py).
    _, book = await site.started()
    await book.act("restrict", CUSTOMER, "statistics", "Dr. Miriam Berg")
    queued_at = site.now + timedelta(minutes=1)
    site.now += timedelta(minutes=2)
    await book.act("lift", CUSTOMER, "statistics", "Dr. Miriam Berg")
    restarted, _ = await site.started()
    assert restarted.released_since(CUSTOMER, "statistics", queued_at) == Reason("restricted")
    assert restarted.released_since(CUSTOMER, "statistics", site.now) is None
    assert restarted.still_allowed(CUSTOMER, "statistics", site.now) is None


async def test_a_restarted_gateway_knows_every_hold_for_the_grants_that_stopped_applying(
    site: Site,
) -> None:
    # "statistics" restricted, lifted, restricted again. A row decided inside the first hold was
    # decided without it: nothing of it stopped applying. One decided before any hold was
    # decided with it. After a restart the engine must know both holds (policies/onset.py).
    _, book = await site.started()
    before_any = site.now - timedelta(minutes=1)
    await book.act("restrict", CUSTOMER, "statistics", "Dr. Miriam Berg")
    inside_first = site.now + timedelta(minutes=1)
    site.now += timedelta(minutes=2)
    await book.act("lift", CUSTOMER, "statistics", "Dr. Miriam Berg")
    site.now += timedelta(minutes=2)
    await book.act("restrict", CUSTOMER, "statistics", "Dr. Miriam Berg")
    site.now += timedelta(minutes=2)
    restarted, _ = await site.started()
    policy = restarted.policy(CUSTOMER)
    assert policy is not None
    assert stopped_applying(restarted, policy, "billing", inside_first, site.now) == ()
    (stop,) = stopped_applying(restarted, policy, "billing", before_any, site.now)
    assert stop is not None and stop.grant.id == "statistics"
    assert (stop.why, stop.reason) == ("held", Reason("restricted"))


async def test_holds_of_a_grant_that_loads_later_reach_the_engine_with_their_history(
    site: Site,
) -> None:
    # The same history, but at the restart the running policy lacks "statistics" (its events
    # wait in the book) until a reload brings it back: then every event reaches the engine.
    _, book = await site.started()
    await book.act("restrict", CUSTOMER, "statistics", "Dr. Miriam Berg")
    inside_first = site.now + timedelta(minutes=1)
    site.now += timedelta(minutes=2)
    await book.act("lift", CUSTOMER, "statistics", "Dr. Miriam Berg")
    site.now += timedelta(minutes=2)
    await book.act("restrict", CUSTOMER, "statistics", "Dr. Miriam Berg")
    site.now += timedelta(minutes=2)
    without = POLICY[: POLICY.index("  - id: statistics")]
    engine = Engine([compile_text(without, {RECIPIENT: "Stadtwerke"})], Keyring())
    later = ConsentBook(
        ConsentParts(
            store=site.store,
            engine=lambda: engine,
            log_writer=lambda: site.writer,
            signer=site.signer,
            config=lambda: Config(einblick_config=1, instance="unit"),
            clock=lambda: site.now,
        )
    )
    await site.store.read(later.load)
    engine.replace(compile_text(POLICY, {RECIPIENT: "Stadtwerke"}))
    later.restore(CUSTOMER)
    policy = engine.policy(CUSTOMER)
    assert policy is not None
    assert engine.held(CUSTOMER, "statistics") == (
        site.now - timedelta(minutes=2),
        Reason("restricted"),
    )
    assert stopped_applying(engine, policy, "billing", inside_first, site.now) == ()
