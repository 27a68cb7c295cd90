"""``python -m gateway.bench.witness``: what cosigning costs, against a real witness process.

A witness (``einblick witness serve``) on loopback follows ``--logs`` logs; each round, every
log grows by ``--grow`` entries and its newest checkpoint is submitted with a consistency proof
from the size cosigned before, as the gateway's submitter does (sequentially, one request per
log). Prints the request latency (p50/p99) and requests per second. The gateway sends one
request per witness per log that grew, at most once per checkpoint interval (1 s), and a slow
witness only makes rounds longer: rounds coalesce, nothing queues up.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.merkle import RightEdge, consistency_proof, leaf_hash, node_hash
from gateway.log.note import Checkpoint, Signer, sign_note
from gateway.witness.directory import init_witness
from gateway.witness.protocol import request_body

__all__ = ["main"]


class _Tree:
    """A growing tree with every level kept, so proofs are cheap to make for the benchmark."""

    def __init__(self) -> None:
        self.levels: list[list[bytes]] = [[]]
        self.edge = RightEdge()

    def append(self, count: int, tag: bytes) -> None:
        for _ in range(count):
            n = len(self.levels[0])
            for level, index, digest in self.edge.append(leaf_hash(tag + n.to_bytes(8, "big"))):
                while len(self.levels) <= level:
                    self.levels.append([])
                assert len(self.levels[level]) == index
                self.levels[level].append(digest)

    def subtree(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n & (n - 1) == 0 and lo % n == 0:
            return self.levels[n.bit_length() - 1][lo // n]
        k = 1 << ((n - 1).bit_length() - 1)
        return node_hash(self.subtree(lo, lo + k), self.subtree(lo + k, hi))


async def _run(args: argparse.Namespace) -> int:
    with tempfile.TemporaryDirectory(prefix="einblick-witness-bench-") as where:
        return await _measure(Path(where), args)


async def _measure(directory: Path, args: argparse.Namespace) -> int:
    init_witness(directory, "bench.example/witness")
    logs = []
    for i in range(args.logs):
        signer = Signer(f"bench.example/box/customer-{i}", Ed25519PrivateKey.generate())
        logs.append((signer, _Tree()))
    (directory / "logs.yaml").write_text(
        yaml.safe_dump({"logs": [{"origin": s.name, "keys": [s.verifier.vkey]} for s, _ in logs]})
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway", "witness", "serve", "--dir", str(directory),
        "--listen", "127.0.0.1:0", stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert proc.stderr is not None
    line = (await proc.stderr.readline()).decode()
    match = re.search(r"listening on (\S+)", line)
    if match is None:
        print(f"the witness did not start: {line}", file=sys.stderr)
        return 1
    url = match.group(1)
    latencies: list[float] = []
    sizes = [0] * len(logs)
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(args.rounds):
                for i, (signer, tree) in enumerate(logs):
                    tree.append(args.grow, signer.name.encode())
                    size = len(tree.levels[0])
                    note = sign_note(Checkpoint(signer.name, size, tree.edge.root()).text, [signer])
                    proof = consistency_proof(sizes[i], size, tree.subtree) if sizes[i] else []
                    body = request_body(sizes[i], proof, note)
                    sent = time.perf_counter()
                    async with session.post(url, data=body) as response:
                        await response.read()
                        if response.status != 200:
                            print(f"refused: {response.status}", file=sys.stderr)
                            return 1
                    latencies.append(time.perf_counter() - sent)
                    sizes[i] = size
    finally:
        proc.terminate()
        await proc.wait()
    latencies.sort()
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(
        f"{len(latencies):,} add-checkpoint requests ({args.logs} logs x {args.rounds} rounds, "
        f"+{args.grow} entries each, trees up to {max(sizes):,} entries): "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, {len(latencies) / sum(latencies):,.0f} requests/s "
        "one after another (the time of each POST and its answer: the witness parsing, checking "
        "the log's signature and the proof, its SQLite commit and its cosignature)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--logs", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--grow", type=int, default=1000)
    return asyncio.run(_run(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
