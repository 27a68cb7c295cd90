"""What the names check costs the proof checker: ``python -m tests.log.bench_names [N]``.

Writes N entries of the log benchmark's realistic mix through the real writer, reads the largest
customer's tree as the verifier does, and times the names check (``gateway.log.names``) beside
the whole ``check_tree`` on it (best of five), once with every names document held and once
after one device was forgotten (the path that walks the entries).
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from gateway.bench.log import realistic_drafts
from gateway.log import proof
from gateway.log.keys import Signer
from gateway.log.names import check_names
from gateway.log.schema import configure_writer, ensure_schema
from gateway.log.stored import tree_input
from gateway.log.tree import tree_info
from gateway.log.writer import LogWriter


def _best(run: Callable[[], object], times: int = 5) -> float:
    best = float("inf")
    for _ in range(times):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return best


def _measure(conn: sqlite3.Connection, signer: Signer, name: str, label: str) -> None:
    chain_id = int(conn.execute("SELECT id FROM chains WHERE name = ?", (name,)).fetchone()[0])
    info = tree_info(conn, chain_id)
    assert info is not None
    tree, _ = tree_input(conn, "bench", name, info)
    count = len(tree.entries) // 114
    records = proof._entries(tree, proof.TreeVerdict(tree.origin, tree.customer))
    docs = proof._bodies(tree, records, proof.TreeVerdict(tree.origin, tree.customer))

    def names() -> None:
        verdict = proof.TreeVerdict(tree.origin, tree.customer)
        check_names(tree, records, docs, verdict)
        assert verdict.problem is None, verdict.problem

    spent = _best(names)
    whole = _best(lambda: proof.check_tree(tree, signer.public), 3)
    print(
        f"{label}: {count:,} entries, {len(tree.names)} names documents held: names check "
        f"{spent * 1e3:.1f} ms ({spent / count * 1e9:.0f} ns per entry); whole check_tree "
        f"{whole * 1e3:.0f} ms ({count / whole:,.0f} entries/s)"
    )


def main(n: int = 200_000) -> None:
    directory = Path(tempfile.mkdtemp(prefix="einblick-bench-names-"))
    conn = sqlite3.connect(directory / "log.db", isolation_level=None)
    configure_writer(conn)
    ensure_schema(conn)
    signer = Signer.generate()
    writer = LogWriter(conn, signer, "bench")
    drafts = realistic_drafts(n)
    for i in range(0, n, 1000):
        batch = drafts[i : i + 1000]
        conn.execute("BEGIN")
        writer.append(batch)
        writer.checkpoint(batch[-1].at + timedelta(microseconds=1))
        conn.execute("COMMIT")
        writer.committed()
    sizes = conn.execute(
        "SELECT c.name, e.device_id, count(*) FROM entries e JOIN chains c ON c.id = e.chain_id"
        " WHERE e.device_id IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 1"
    ).fetchone()
    name, device_id = str(sizes[0]), int(sizes[1])
    _measure(conn, signer, name, "all held")
    device = str(conn.execute("SELECT value FROM atoms WHERE id = ?", (device_id,)).fetchone()[0])
    at = drafts[-1].at + timedelta(seconds=1)
    conn.execute("BEGIN")
    writer.erase_subject(f"{name}/{device}", at, "bench")
    writer.checkpoint(at)
    conn.execute("COMMIT")
    writer.committed()
    _measure(conn, signer, name, f"{device} forgotten")
    conn.close()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200_000)
