"""One entry's proof as the reader serves it: the signing keys, the checkpoints, the link to the
entry before, and the detail view; every check is ``gateway.log.verify``'s, never re-derived here.
"""

from __future__ import annotations

from gateway.errors import LogError
from gateway.log.chain import genesis_hash
from gateway.log.entry import at_from_us
from gateway.log.keys import PublicKey, fingerprint
from gateway.log.legacy import CheckpointRecord, EntryProof, prove_entry
from gateway.log.reader.base import ReaderBase
from gateway.log.results import CheckpointInfo, EntryDetail, EntryFacts
from gateway.log.verify import checkpoint_valid, entry_proof

__all__ = ["MAX_WALK", "ProofQueries"]

MAX_WALK = 500_000  # entries walked to a checkpoint before giving up on "head matches"


class ProofQueries(ReaderBase):
    """Keys, checkpoints, proofs and details of single entries."""

    def public_keys(self) -> dict[bytes, PublicKey]:
        if not self._keys:
            self._keys = {
                bytes(k): PublicKey(bytes(p))
                for k, p in self._conn.execute("SELECT key_id, public FROM keys")
            }
        return self._keys

    def newest_key_fingerprint(self) -> str | None:
        row = self._conn.execute("SELECT key_id FROM keys ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else fingerprint(bytes(row[0]))

    def checkpoint_rows(
        self, *, chain_id: int | None = None, covering: int | None = None, limit: int = 100
    ) -> list[tuple[int, CheckpointRecord]]:
        """(chain id, checkpoint) newest first; with ``covering``, the first covering that index."""
        where, params = [self._own()[0]], list(self._own()[1])
        if chain_id is not None:
            where.append("chain_id = ?")
            params.append(chain_id)
        if covering is not None:
            where.append("size > ?")
            params.append(covering)
        order = "size ASC, id ASC" if covering is not None else "id DESC"
        rows = self._conn.execute(
            "SELECT chain_id, size, head, at, key_id, signature FROM checkpoints"
            f" WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
            [*params, limit],
        )
        return [
            (int(c), CheckpointRecord(int(s), bytes(h), int(a), bytes(k), bytes(sig)))
            for c, s, h, a, k, sig in rows
        ]

    def proof(self, facts: EntryFacts) -> EntryProof:
        """The entry's link and its first checkpoint, checked by ``gateway.log.verify``."""
        line = facts.line
        in_tree = entry_proof(self._conn, self.origin, line.chain_id, line.index, self._notes)
        if in_tree is not None:  # the tree's own proof, from the verifier
            return in_tree
        prev_row = self._conn.execute(
            "SELECT hash FROM entries WHERE chain_id = ? AND seq < ? ORDER BY seq DESC LIMIT 1",
            (line.chain_id, line.seq),
        ).fetchone()
        prev: bytes | None
        if prev_row is not None:
            prev = bytes(prev_row[0])
        elif line.index == 0:
            prev = genesis_hash(self.origin, facts.chain)
        else:  # compacted: the anchor checkpoint holds the head before this entry
            anchor = self._conn.execute(
                "SELECT head FROM checkpoints WHERE chain_id = ? AND size = ?",
                (line.chain_id, line.index),
            ).fetchone()
            prev = None if anchor is None else bytes(anchor[0])
        found = self.checkpoint_rows(chain_id=line.chain_id, covering=line.index, limit=1)
        checkpoint = found[0][1] if found else None
        first = (
            line.index,
            line.at_us,
            self.body(line.body_id).digest,
            facts.source,
            facts.commitment,
            facts.entry_hash,
        )
        entries: list[tuple[int, int, bytes, bytes, bytes | None, bytes]] = [first]
        if checkpoint is not None and checkpoint.size - line.index <= MAX_WALK:
            entries += [
                (
                    int(i),
                    int(a),
                    self.body(int(b)).digest,
                    bytes(s),
                    None if c is None else bytes(c),
                    bytes(h),
                )
                for i, a, b, s, c, h in self._conn.execute(
                    "SELECT idx, at, body_id, source, commitment, hash FROM entries"
                    " WHERE chain_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                    (line.chain_id, line.seq, checkpoint.size - line.index - 1),
                )
            ]
        return prove_entry(self.origin, facts.chain, prev, entries, checkpoint, self.public_keys())

    def checkpoint_infos(
        self, *, customer: str | None = None, covering: int | None = None, limit: int = 100
    ) -> list[CheckpointInfo]:
        """Checkpoints, newest first; with ``covering``, the first one covering that index."""
        chain_id = None
        if customer is not None:
            chain_id = self.chain_id(customer)
            if chain_id is None:
                return []
        chains = self.chain_names()
        out = []
        for cid, cp in self.checkpoint_rows(chain_id=chain_id, covering=covering, limit=limit):
            name = chains.get(cid, f"#{cid}")
            # The signature alone, by the verifier's own check.
            valid = checkpoint_valid(self._conn, self.origin, cid, name, cp, self._notes)
            out.append(
                CheckpointInfo(
                    name,
                    cp.size,
                    cp.head,
                    at_from_us(cp.at),
                    fingerprint(cp.key_id),
                    valid,
                )
            )
        return out

    def detail(self, seq: int) -> EntryDetail:
        facts = self.entry(seq)
        if facts is None:
            raise LogError(
                f"log entry {seq}: not found (compacted, never written, or another customer's)"
            )
        row = self.row(facts.line)
        doc = self.body(facts.line.body_id).doc
        cps = self.checkpoint_infos(customer=row.customer, covering=row.index, limit=1)
        return EntryDetail(
            row=row,
            grant=doc["grant"],
            policy_version=doc["policy_version"],
            purpose=dict(doc["purpose"]),
            legal_basis=doc["legal_basis"],
            shared=tuple(doc["shared"]),
            altered=tuple((a[0], a[1], a[2]) for a in doc["altered"]),
            withheld=tuple(doc["withheld"]),
            reason=doc["reason"],
            reason_params=dict(doc["reason_params"]),
            subject=doc["subject"],
            topic=facts.topic,
            content=facts.content,
            source_digest=facts.source,
            commitment=facts.commitment,
            entry_hash=facts.entry_hash,
            checkpoint=cps[0] if cps else None,
        )
