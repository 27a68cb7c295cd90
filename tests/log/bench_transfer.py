"""What moving a customer's tree costs: ``python -m tests.log.bench_transfer [N]``.

Writes N entries of one customer through the real writer (batches of 1,000, each checkpointed),
then times the three steps of a handover (``gateway.log.transfer``): closing the tree on the old
database, reading its rows, adopting them into a new database with the handover record, and
removing the old database's copy of the customer's personal data once the new one records the
handover (``gateway.log.leftovers``); and checks that the new database's export verifies under
the old key and that the old database, without that data, still verifies.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.forget import scrub
from gateway.log.keys import Signer
from gateway.log.leftovers import remove_leftovers, taken_over_by
from gateway.log.transfer import adopt_tree, close_tree, open_tree_record, read_tree
from gateway.log.verify import verify_db
from tests.log.conftest import Log, make_draft

C = "baeckerei-schmidt"


def main(n: int) -> int:
    with tempfile.TemporaryDirectory() as directory:
        tmp = Path(directory)
        a, b = Signer.generate(tmp / "a.key"), Signer.generate(tmp / "b.key")
        old = Log(tmp / "a.db", a, "hall-a")
        for first in range(0, n, 1000):
            old.write([make_draft(i, customer=C) for i in range(first, min(n, first + 1000))])
        new = Log(tmp / "b.db", b, "hall-b")
        at = make_draft(n + 1).at
        t0 = time.perf_counter()
        old.conn.execute("BEGIN IMMEDIATE")
        closed = close_tree(
            old.conn, old.writer, C, new_origin=f"hall-b/{C}", new_key=b.public, now=at
        )
        old.conn.execute("COMMIT")
        old.writer.committed()
        t1 = time.perf_counter()
        rows = read_tree(old.path, C)
        t2 = time.perf_counter()
        new.conn.execute("BEGIN IMMEDIATE")
        adopt_tree(new.conn, rows)
        new.writer.reload()
        new.writer.append([open_tree_record(closed, b, at)])
        new.writer.checkpoint(at)
        new.conn.execute("COMMIT")
        new.writer.committed()
        t3 = time.perf_counter()
        assert taken_over_by(new.path, C, f"hall-a/{C}", closed.size)
        old.conn.execute("BEGIN IMMEDIATE")
        removed = remove_leftovers(old.conn, C).total
        old.conn.execute("COMMIT")
        old.writer.reload()
        copied = scrub(old.conn)
        t4 = time.perf_counter()
        verdict = verify_bundle(export_customer(new.path, C), a.public)
        old_ok = verify_db(old.path).ok
        old.close()
        new.close()
    print(
        f"{verdict.size} entries, verified: {verdict.problem is None}; close {t1 - t0:.3f} s, "
        f"read {t2 - t1:.2f} s, adopt + record {t3 - t2:.2f} s; old copy: {removed:,} rows "
        f"removed in {t4 - t3:.2f} s (WAL copied: {copied}), verified: {old_ok}"
    )
    return 0 if verdict.problem is None and old_ok and copied else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50_000))
