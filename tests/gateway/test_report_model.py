"""The access report's JSON export (``einblick-report/1``, Art. 20) is byte for byte the one kept
in ``tests/data/reports/``: typing the report's data (``gateway.rights.report_model``) or keeping
its counts (``gateway.rights.report_tally``) changes no byte a customer's tools read.

A real log file written by the log's writer with a fixed key, so every byte is reproducible:
shared, altered and withheld entries of three devices, a consent withdrawn, an objection.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.keys import Signer
from gateway.rights.held_trees import HeldTrees
from gateway.rights.report import build_report, render
from gateway.rights.report_tally import Tallies
from tests.log.conftest import Log, make_draft

MINE = "baeckerei-schmidt"
NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
KEPT = Path(__file__).parent.parent / "data" / "reports" / "baeckerei-schmidt.json"


def _write(log: Log, first: int, last: int) -> None:
    drafts = []
    for i in range(first, last):
        draft = make_draft(i, customer=MINE if i % 5 else "metallbau-huber")
        if i % 7 == 2 and draft.outcome == "shared":
            draft = replace(
                draft,
                outcome="altered",
                shared=(),
                altered=(("badge", "pseudonymise", "hmac"), ("temp", "round", "1")),
            )
        if i % 11 == 5 and draft.outcome == "withheld":
            draft = replace(draft, reason="consent_withdrawn", reason_params={"grant": "g-1"})
        drafts.append(draft)
    for i, kind in ((first + 1, "consent_withdrawn"), (first + 3, "objection")):
        drafts.append(
            make_draft(
                i,
                customer=MINE,
                kind=kind,
                outcome=None,
                reason=None,
                grant="maintenance-temps",
                reason_params={"by": "Anna Schmidt"},
                text_de=f"{kind} {i}",
                text_en=f"{kind} {i} (en)",
            )
        )
    log.write(drafts)


def test_the_json_export_is_byte_for_byte_the_kept_one(tmp_path: Path) -> None:
    signer = Signer(Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
    log = Log(tmp_path / "log.db", signer)
    try:
        _write(log, 0, 200)
        trees, tallies = HeldTrees(), Tallies()

        def report() -> str:
            data = build_report(
                log.path,
                MINE,
                policy=None,
                recipients={"wartung-gmbh": "Wartung GmbH"},
                public_key=signer.public,
                now=NOW,
                trees=trees,
                tallies=tallies,
            )
            return render(data, "json", "en")

        report()
        _write(log, 200, 400)  # the second build extends the kept counts
        text = report()
    finally:
        log.close()
    assert tallies.extended == 1
    assert text == KEPT.read_text(encoding="utf-8")
