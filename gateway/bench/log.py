"""Benchmark of the explanation log: ``python -m gateway.bench.log [--entries N]``.

Prints, for a realistic mix (3 customers, 10 devices each, 3 recipients; a quarter withheld, the
rest carrying a ~50-byte payload; explanation texts that repeat per device, recipient and
outcome):

- appended entries/s: batches of 1000 drafts per transaction, each customer's tree maintained,
  a checkpoint note signed every (simulated) second, committed with synchronous=FULL -- what the
  gateway's writer thread does;
- the baseline: plain ``executemany`` of the same row shapes into the same schema, no hashing,
  no signatures, same commits;
- tree maintenance against the 0.1.0 hash chain, per entry, on the same entries: the chain's
  one domain-separated SHA-256 per entry against the tree's leaf hash, right-edge merges and
  stored levels (what the writer adds per entry);
- a customer's bundle verified end to end (parse, leaves, bodies, rotations, roots, signatures,
  held content) in entries/s: streamed from the file as ``einblick verify`` does, and by the
  whole-file checker (what a bundle that fails gets), against re-hashing the same entries as a
  0.1.0 chain (best of 5 runs of each, taken in turn);
- the peak memory (RSS) of ``einblick verify`` on one customer's bundle of each of
  ``--memory-sizes`` entries, in a process of its own, against the whole-file checker in one
  and against ``einblick --version`` (the command's imports, nothing verified);
- the box's database verified (every log) in entries/s;
- one inclusion and one consistency proof read from stored hashes and checked, at 10,000,000
  entries (``--proof-size``): every level-8 and level-16 hash is stored, computed from
  synthetic leaves; leaf rows are stored for the 256-leaf blocks the sampled proofs read;
- bytes on disk per entry, in total and without the erasable content (payloads and topics).
"""

from __future__ import annotations

import argparse
import base64
import gc
import hashlib
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

from gateway.log.batches import commit_batch
from gateway.log.bundle import export_customer, verify_bundle_file, verify_whole_bundle
from gateway.log.chain import entry_hash
from gateway.log.entry import EntryDraft
from gateway.log.keys import Signer
from gateway.log.leaf import ENTRY_LAYOUT, entry_leaf
from gateway.log.merkle import RightEdge, leaf_hash, node_hash, verify_consistency, verify_inclusion
from gateway.log.schema import configure_writer, ensure_schema
from gateway.log.synthetic import (
    append_plain,
    erasable_bytes,
    leaf_inputs,
    plant_tree,
)
from gateway.log.tree import BLOCK, TreeHashes, stored_levels
from gateway.log.verify import verify_db
from gateway.log.writer import LogWriter

__all__ = [
    "BundleRates",
    "bench_bundle",
    "bench_memory",
    "main",
    "one_customer_bundle",
    "realistic_drafts",
]

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RECIPIENTS = ("wartung-gmbh", "energie-cloud", "hersteller-support")
CUSTOMERS = ("baeckerei-schmidt", "metallbau-huber", "praxis-dr-weber")


def realistic_drafts(
    n: int, *, rate_per_s: int = 50_000, first: int = 0, customers: Sequence[str] = CUSTOMERS
) -> list[EntryDraft]:
    """``n`` drafts as the pipeline would produce them, ``rate_per_s`` per simulated second
    (draft numbers ``first`` onwards, the customers taking turns)."""
    drafts: list[EntryDraft] = []
    step = timedelta(microseconds=1_000_000 // rate_per_s)
    for i in range(first, first + n):
        customer = customers[i % len(customers)]
        device = f"{customer[:6]}-dev-{(i // 3) % 10}"
        recipient = RECIPIENTS[(i // 30) % 3]
        withheld = i % 4 == 3
        payload = b'{"t":%d.%d,"hum":%d,"door":"closed"}' % (20 + i % 5, i % 10, 40 + i % 9)
        outcome = "withheld" if withheld else ("altered" if i % 4 == 2 else "shared")
        drafts.append(
            EntryDraft(
                kind="decision",
                at=T0 + step * i,
                customer=customer,
                device=device,
                recipient=recipient,
                outcome=outcome,
                grant=None if withheld else f"{recipient}-telemetry",
                policy_version="sha256:5f1c0a",
                purpose={"de": "Fernwartung", "en": "remote maintenance"},
                legal_basis=None if withheld else "contract",
                topic=None if withheld else f"{customer}/{device}/telemetry",
                content=None if withheld else payload,
                source_digest=hashlib.sha256(payload).digest(),
                shared=("t", "hum") if not withheld else (),
                altered=(("door", "coarsen", "open/closed"),) if outcome == "altered" else (),
                withheld=("t", "hum", "door") if withheld else ("door",),
                reason="no_grant" if withheld else None,
                reason_params={},
                text_de=f"{device}: {outcome} an {recipient} (Fernwartung, Vertrag).",
                text_en=f"{device}: {outcome} to {recipient} (remote maintenance, contract).",
            )
        )
    return drafts


def _open(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    configure_writer(conn)
    ensure_schema(conn)
    return conn


def bench_append(path: Path, drafts: list[EntryDraft], signer: Signer) -> float:
    conn = _open(path)
    writer = LogWriter(conn, signer, "bench")
    last_checkpoint = drafts[0].at
    started = time.perf_counter()
    for start in range(0, len(drafts), 1000):
        batch = drafts[start : start + 1000]
        now = batch[-1].at
        due = now - last_checkpoint >= timedelta(seconds=1)
        commit_batch(conn, writer, batch, now if due else None)
        if due:
            last_checkpoint = now
    commit_batch(conn, writer, (), drafts[-1].at + timedelta(seconds=1))  # clean shutdown
    elapsed = time.perf_counter() - started
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return elapsed


def bench_baseline(path: Path, drafts: list[EntryDraft]) -> float:
    """Same rows, same schema and commits; ids from plain dicts, no hashing or signatures."""
    conn = _open(path)
    started = time.perf_counter()
    append_plain(conn, drafts)
    elapsed = time.perf_counter() - started
    conn.close()
    return elapsed


def disk_usage(path: Path) -> tuple[int, int]:
    """(database file bytes, bytes used by the erasable content and topics tables)."""
    conn = sqlite3.connect(path)
    personal = erasable_bytes(conn)
    conn.close()
    return path.stat().st_size, personal


def bench_tree_vs_chain(path: Path) -> tuple[float, float]:
    """(chain µs/entry, tree µs/entry) over the stored entries of the biggest log."""
    conn = sqlite3.connect(path)
    entries = leaf_inputs(conn, 1)
    conn.close()
    started = time.perf_counter()
    prev = bytes(32)
    for index, at, digest, source, commitment in entries:
        prev = entry_hash(prev, index, at, digest, source, commitment)
    chain = time.perf_counter() - started
    started = time.perf_counter()
    edge = RightEdge()
    kept = []
    for index, at, digest, source, commitment in entries:
        completed = edge.append(entry_leaf(index, at, digest, source, commitment))
        if len(completed) > 8:
            kept += stored_levels(completed)
    edge.root()
    tree = time.perf_counter() - started
    return chain / len(entries) * 1e6, tree / len(entries) * 1e6


@dataclass(frozen=True, slots=True)
class BundleRates:
    """Entries verified per second, each the best of the runs."""

    entries: int
    streamed: float  # ``einblick verify``: streamed from the file, wall clock
    streamed_cpu: float  # the same runs in CPU time of this process (others' load left out)
    whole: float  # the whole-file checker (what a bundle that fails gets), wall clock
    chain: float  # the same entries re-hashed as a 0.1.0 chain, wall clock


def bench_bundle(path: Path, customer: str, signer: Signer, rounds: int = 5) -> BundleRates:
    """A customer's bundle verified ``rounds`` times each way, taken in turn, so a moment of
    load on a shared machine hits all alike."""
    data = export_customer(path, customer)
    bundle = path.with_suffix(".bundle")
    bundle.write_bytes(data)
    # As ``einblick verify`` runs it: in a process of its own, where the collector does not
    # rescan this benchmark's 100,000s of drafts each time the verifier allocates.
    gc.collect()
    gc.freeze()
    records = [
        ENTRY_LAYOUT.unpack(r)
        for r in _records(data)  # the same entries, as the chain verifier would walk them
    ]
    stream_s = stream_cpu = whole_s = chain_s = float("inf")
    size = 0
    for _ in range(rounds):
        started, cpu = time.perf_counter(), time.process_time()
        verdict = verify_bundle_file(bundle, signer.public)
        stream_s = min(stream_s, time.perf_counter() - started)
        stream_cpu = min(stream_cpu, time.process_time() - cpu)
        if not verdict.ok:
            raise SystemExit(f"the benchmark's bundle does not verify: {verdict.problem}")
        size = verdict.size
        started = time.perf_counter()
        whole = verify_whole_bundle(data, signer.public)
        whole_s = min(whole_s, time.perf_counter() - started)
        if not whole.ok or whole.size != size:
            raise SystemExit(f"the whole-file checker disagrees: {whole.problem}")
        started = time.perf_counter()
        prev = bytes(32)
        for _v, index, at, digest, source, flag, commitment in records:
            prev = entry_hash(prev, index, at, digest, source, commitment if flag else None)
        chain_s = min(chain_s, time.perf_counter() - started)
    gc.unfreeze()
    bundle.unlink()
    return BundleRates(size, size / stream_s, size / stream_cpu, size / whole_s, size / chain_s)


def one_customer_bundle(directory: Path, n: int, signer: Signer) -> Path:
    """A bundle of ``n`` entries of one customer (the realistic mix), written in batches of
    1,000 as the gateway's writer does, signed each simulated second and at the end."""
    db = directory / f"memory-{n}.db"
    conn = _open(db)
    writer = LogWriter(conn, signer, "bench")
    last_checkpoint = T0
    at = T0
    for start in range(0, n, 1000):
        batch = realistic_drafts(min(1000, n - start), first=start, customers=CUSTOMERS[:1])
        at = batch[-1].at
        due = at - last_checkpoint >= timedelta(seconds=1)
        commit_batch(conn, writer, batch, at if due else None)
        if due:
            last_checkpoint = at
    commit_batch(conn, writer, (), at + timedelta(seconds=1))
    conn.close()
    bundle = directory / f"memory-{n}.bundle"
    bundle.write_bytes(export_customer(db, CUSTOMERS[0]))
    for name in (db.name, db.name + "-wal", db.name + "-shm"):
        (directory / name).unlink(missing_ok=True)
    return bundle


_WHOLE = (  # with the command's imports (gateway.cli), as the streamed run and the baseline
    "import sys; from pathlib import Path; import gateway.cli; "
    "from gateway.log.bundle import verify_whole_bundle; "
    "from gateway.log.keys import load_public_key; "
    "sys.exit(verify_whole_bundle(Path(sys.argv[1]).read_bytes(), load_public_key(sys.argv[2])).code)"
)


# The child is started from a small process of its own: Linux keeps a process's peak RSS
# across fork and exec, so a child forked from this benchmark (holding its drafts and the
# exported bundle) would report the benchmark's peak, not its own.
_MEASURE = (
    "import os, sys; quiet = [(os.POSIX_SPAWN_OPEN, fd, os.devnull, os.O_WRONLY, 0)"
    " for fd in (1, 2)]; pid = os.posix_spawn(sys.executable, [sys.executable,"
    " *sys.argv[1:]], os.environ, file_actions=quiet); _, status, usage = os.wait4(pid, 0);"
    " print(usage.ru_maxrss, os.waitstatus_to_exitcode(status))"
)


def _peak_rss_kb(args: list[str]) -> int:
    """The peak resident memory (kB) of ``python ARGS`` (which must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, *args], capture_output=True, text=True, check=True
    )
    peak, code = map(int, done.stdout.split())
    if code != 0:
        raise SystemExit(f"python {' '.join(args[:3])}…: exit {code}")
    return peak


def bench_memory(
    directory: Path, sizes: Sequence[int], signer: Signer
) -> list[tuple[int, int, int, int, int]]:
    """Per size: (entries, bundle bytes, peak RSS kB of ``einblick verify`` streaming it, of
    the whole-file checker, of ``einblick --version``: the command's imports alone)."""
    key = directory / "memory.pub"
    key.write_text(signer.public.raw.hex())
    baseline = _peak_rss_kb(["-m", "gateway", "--version"])
    found = []
    for n in sizes:
        bundle = one_customer_bundle(directory, n, signer)
        streamed = _peak_rss_kb(["-m", "gateway", "verify", str(bundle), "--key", str(key)])
        whole = _peak_rss_kb(["-c", _WHOLE, str(bundle), str(key)])
        found.append((n, bundle.stat().st_size, streamed, whole, baseline))
        bundle.unlink()
    key.unlink()
    return found


def _records(data: bytes) -> list[bytes]:
    """The 114 entry bytes of each entry in a v3 bundle (a line: k entries, then k leaves)."""
    records = []
    for line in map(orjson.loads, data.splitlines()):
        if line["t"] == "entries":
            chunk = base64.b64decode(line["data"])
            k = len(chunk) // 146
            records += [chunk[i : i + 114] for i in range(0, k * 114, 114)]
    return records


def sha_rate(count: int = 200_000) -> float:
    """SHA-256 of 115 bytes per second on this machine now: the unit every figure above is
    made of (a shared machine's load shows here first)."""
    data = [i.to_bytes(8, "big") * 14 + b"x" for i in range(count)]
    sha = hashlib.sha256
    started = time.perf_counter()
    for item in data:
        sha(item).digest()
    return count / (time.perf_counter() - started)


def _synthetic_leaf(i: int) -> bytes:
    return leaf_hash(i.to_bytes(8, "big"))


def bench_proofs(path: Path, size: int, samples: int = 20) -> tuple[float, float]:
    """(inclusion ms, consistency ms) per proof read from stored hashes and verified."""
    conn = sqlite3.connect(path, isolation_level=None)
    configure_writer(conn)
    ensure_schema(conn)
    level8: list[bytes] = []
    for block in range(size // BLOCK):
        level = [_synthetic_leaf(i) for i in range(block * BLOCK, (block + 1) * BLOCK)]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        level8.append(level[0])
    stored = [(8, i, h) for i, h in enumerate(level8)]
    level16 = []
    for block in range(len(level8) // BLOCK):
        level = level8[block * BLOCK : (block + 1) * BLOCK]
        while len(level) > 1:
            level = [node_hash(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        level16.append(level[0])
    stored += [(16, i, h) for i, h in enumerate(level16)]
    rng = random.Random(7)
    wanted = [rng.randrange(size) for _ in range(samples)]
    olds = [rng.randrange(1, size) for _ in range(samples)]
    blocks = {i // BLOCK for i in wanted + olds} | {(size - 1) // BLOCK}
    leaves = [
        (i, _synthetic_leaf(i))
        for block in sorted(blocks)
        for i in range(block * BLOCK, min((block + 1) * BLOCK, size))
    ]
    chain_id = plant_tree(conn, stored, leaves)
    root = _root(TreeHashes(conn, chain_id, 0).compact_range(size))
    started = time.perf_counter()
    for i in wanted:
        proof = TreeHashes(conn, chain_id, 0).inclusion(i, size)
        verify_inclusion(_synthetic_leaf(i), i, size, proof, root)
    inclusion = (time.perf_counter() - started) / samples * 1e3
    started = time.perf_counter()
    for old in olds:
        hashes = TreeHashes(conn, chain_id, 0)
        old_root = _root(hashes.compact_range(old))
        verify_consistency(old, size, old_root, root, hashes.consistency(old, size))
    consistency = (time.perf_counter() - started) / samples * 1e3
    conn.close()
    return inclusion, consistency


def _root(compact: list[bytes]) -> bytes:
    root = compact[-1]
    for h in reversed(compact[:-1]):
        root = node_hash(h, root)
    return root


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gateway.bench.log", description=__doc__)
    parser.add_argument("--entries", type=int, default=200_000)
    parser.add_argument("--dir", type=Path, default=None, help="where to put the databases")
    parser.add_argument("--proof-size", type=int, default=10_000_000, help="tree size for proofs")
    parser.add_argument(
        "--memory-sizes",
        default="100000,1000000",
        help="bundle sizes (entries, comma-separated) whose verification memory is measured",
    )
    args = parser.parse_args(argv)
    memory_sizes = [int(x) for x in str(args.memory_sizes).split(",") if x]
    n: int = args.entries
    drafts = realistic_drafts(n)
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        base = Path(tmp)
        signer = Signer.generate()
        append_s = bench_append(base / "log.db", drafts, signer)
        baseline_s = bench_baseline(base / "baseline.db", drafts)
        started = time.perf_counter()
        report = verify_db(base / "log.db", public_key=signer.public, check_content=False)
        verify_s = time.perf_counter() - started
        started = time.perf_counter()
        full = verify_db(base / "log.db", public_key=signer.public)
        verify_full_s = time.perf_counter() - started
        if not (report.ok and full.ok) or report.entries != n:
            print(report.summary(), file=sys.stderr)
            return 1
        size, personal = disk_usage(base / "log.db")
        chain_us, tree_us = bench_tree_vs_chain(base / "log.db")
        rates = bench_bundle(base / "log.db", CUSTOMERS[0], signer)
        inclusion_ms, consistency_ms = bench_proofs(base / "proofs.db", args.proof_size)
        memory = bench_memory(base, memory_sizes, signer)
    print(f"explanation log benchmark: {n:,} entries, realistic mix, 1000 per transaction")
    print(f"  (this machine now: {sha_rate():,.0f} SHA-256 of 115 bytes per second)")
    print(f"  appended (trees, checkpointed each second, committed):   {n / append_s:>10,.0f}/s")
    print(f"  baseline (plain executemany, no hashing or signatures):  {n / baseline_s:>10,.0f}/s")
    print(f"  per entry: 0.1.0 chain hash {chain_us:.2f} µs, tree maintenance {tree_us:.2f} µs")
    print(f"             (the tree adds {tree_us - chain_us:+.2f} µs per entry)")
    print(f"  bundle of {rates.entries:,} entries verified end to end:  {rates.streamed:>10,.0f}/s")
    print(
        f"    (streamed from its file, as einblick verify reads it; {rates.streamed_cpu:,.0f}/s"
        " in CPU time)"
    )
    print(f"    by the whole-file checker (a bundle that fails):   {rates.whole:>10,.0f}/s")
    print(f"    the same entries re-hashed as a 0.1.0 chain:       {rates.chain:>10,.0f}/s")
    print("    (each the best of 5 runs taken in turn)")
    for entries, size_bytes, streamed, whole, baseline in memory:
        print(
            f"  peak memory of einblick verify, one customer's {entries:,} entries "
            f"({size_bytes / 1e6:,.0f} MB bundle):"
        )
        print(
            f"    streamed {streamed / 1024:,.0f} MB, whole-file checker {whole / 1024:,.0f} MB "
            f"(einblick --version alone {baseline / 1024:,.0f} MB)"
        )
    print(f"  database verified (every log, no content):           {n / verify_s:>10,.0f}/s")
    print(f"  database verified incl. held content:                {n / verify_full_s:>10,.0f}/s")
    print(
        f"  at {args.proof_size:,} entries: inclusion proof read + checked {inclusion_ms:.2f} ms,"
    )
    print(f"                         consistency proof read + checked {consistency_ms:.2f} ms")
    print(f"  bytes on disk per entry:                       {size / n:>10.1f}")
    print(f"  bytes per entry without erasable content:      {(size - personal) / n:>10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
