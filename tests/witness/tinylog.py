"""A small transparency log in memory for witness tests: leaves, signed checkpoints, proofs.

Built from the product's own pure pieces (``gateway.log.merkle``, ``gateway.log.note``), so the
witness is tested against the exact formats the box writes, before the box's tree store is
wired in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.merkle import consistency_proof, leaf_hash, root_of_leaf_hashes
from gateway.log.note import Checkpoint, Signer, Verifier, sign_note


@dataclass
class TinyLog:
    origin: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    leaves: list[bytes] = field(default_factory=list)

    @property
    def signer(self) -> Signer:
        return Signer(self.origin, self.key)

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    def append(self, count: int, tag: str = "entry") -> None:
        start = len(self.leaves)
        self.leaves += [leaf_hash(f"{tag} {i}".encode()) for i in range(start, start + count)]

    def root(self, size: int) -> bytes:
        return root_of_leaf_hashes(self.leaves[:size])

    def checkpoint(self, size: int | None = None, *, signers: list[Signer] | None = None) -> str:
        size = len(self.leaves) if size is None else size
        text = Checkpoint(self.origin, size, self.root(size)).text
        return sign_note(text, signers if signers is not None else [self.signer])

    def proof(self, old: int, new: int | None = None) -> list[bytes]:
        new = len(self.leaves) if new is None else new
        return consistency_proof(old, new, self.root_of_range)

    def root_of_range(self, lo: int, hi: int) -> bytes:
        return root_of_leaf_hashes(self.leaves[lo:hi])

    def rewritten(self, keep: int, extra: int) -> TinyLog:
        """The same origin and key, the first ``keep`` leaves, then a different history."""
        other = TinyLog(self.origin, self.key, list(self.leaves[:keep]))
        other.append(extra, tag="rewritten")
        return other
