"""Write a log and an export as the hash-chain release wrote them (run with that release).

    git archive 5f1845b gateway policies | tar -x -C /tmp/einblick-old
    PYTHONPATH=/tmp/einblick-old python tests/log/data/legacy/generate.py

Commit 5f1845b is the last before the trees: its ``LogWriter`` writes hash chains and its
``export_customer`` writes ``einblick-bundle/v1``. The key is a fixed seed (``legacy.seed``), so
the tests can continue this log as the same box would. Two customers; Schmidt's chain ends in
two entries no checkpoint signed yet (a tail a crash left), which the tree's seal must cover.
"""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.bundle import export_customer  # the v1 exporter of that release
from gateway.log.entry import EntryDraft
from gateway.log.keys import Signer
from gateway.log.schema import configure_writer, ensure_schema
from gateway.log.writer import LogWriter

HERE = Path(__file__).parent
SEED = hashlib.sha256(b"einblick legacy test log").digest()
T0 = datetime(2026, 2, 1, 9, 0, tzinfo=UTC)


def draft(i: int, customer: str) -> EntryDraft:
    payload = b'{"temp":%d.5,"badge":"B-%04d"}' % (180 + i % 7, i)
    return EntryDraft(
        kind="decision",
        at=T0 + timedelta(seconds=i),
        customer=customer,
        device=f"oven-{i % 2}",
        recipient="wartung-gmbh",
        outcome="shared",
        grant="maintenance-temps",
        policy_version="sha256:abc123",
        purpose={"de": "Wartung", "en": "maintenance"},
        legal_basis="contract",
        topic=f"{customer}/oven-{i % 2}/telemetry",
        content=payload,
        source_digest=hashlib.sha256(payload).digest(),
        shared=("temp",),
        altered=(),
        withheld=("badge",),
        reason=None,
        reason_params={},
        text_de="Temperatur an Wartung GmbH geteilt (Wartung, Vertrag).",
        text_en="Temperature shared with Wartung GmbH (maintenance, contract).",
    )


def main() -> None:
    path = HERE / "legacy.db"
    path.unlink(missing_ok=True)
    signer = Signer(Ed25519PrivateKey.from_private_bytes(SEED))
    conn = sqlite3.connect(path, isolation_level=None)
    configure_writer(conn)
    ensure_schema(conn)
    writer = LogWriter(conn, signer, "edge-legacy")
    for batch in range(3):
        conn.execute("BEGIN IMMEDIATE")
        writer.append([draft(batch * 6 + k, c) for k in range(3) for c in ("schmidt", "huber")])
        writer.checkpoint(T0 + timedelta(seconds=batch * 6 + 5))
        conn.execute("COMMIT")
        writer.committed()
    (HERE / "schmidt-v1.bundle").write_bytes(export_customer(path, "schmidt"))
    conn.execute("BEGIN IMMEDIATE")
    writer.append([draft(100, "schmidt"), draft(101, "schmidt")])  # never signed by this release
    conn.execute("COMMIT")
    writer.committed()
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()
    (HERE / "legacy.seed").write_text(SEED.hex() + "\n")
    (HERE / "legacy.pub").write_text(signer.public.pem())


if __name__ == "__main__":
    main()
