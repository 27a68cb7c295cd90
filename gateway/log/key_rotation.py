"""Replacing the log's signing key: one rotation record, signed by both keys, in every log.

Every log that grew is first checkpointed with the old key, so everything written before the
rotation is signed by the key that was current then. The ``keys`` table gets the new key with
both keys' signatures over the 0.1.0 rotation message (``gateway.log.chain.rotation_message``,
which the legacy path checks); then each log gets a ``key_rotation`` entry whose parameters
carry both keys and both signatures over (origin, index, old, new)
(``gateway.log.leaf.rotation_message_v2``, SPEC.md §4). From that index on only the new key
signs that log; the writer switches to it when the caller commits.

The verifier's side of the same records is ``gateway.log.rotations``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from gateway.errors import LogError
from gateway.log.chain import GATEWAY_CHAIN, rotation_message
from gateway.log.entry import AppendedEntry, Checkpoint, EntryDraft, us_from_at
from gateway.log.keys import Signer
from gateway.log.leaf import rotation_message_v2
from gateway.log.notices import rotation_draft

__all__ = ["RotatingWriter", "rotate_key"]


class RotatingWriter(Protocol):
    """The part of ``LogWriter`` a rotation uses."""

    @property
    def origin(self) -> str: ...

    @property
    def signer(self) -> Signer: ...

    def origin_of(self, chain: str) -> str: ...

    def log_names(self) -> list[str]: ...

    def tree_size(self, customer: str | None) -> int: ...

    def checkpoint(self, now: datetime) -> list[Checkpoint]: ...

    def append(self, drafts: Sequence[EntryDraft]) -> list[AppendedEntry]: ...


def rotate_key(
    conn: sqlite3.Connection, writer: RotatingWriter, new_signer: Signer, now: datetime
) -> AppendedEntry:
    """Write the rotation to ``new_signer`` in the caller's open transaction; returns the box's
    own log's rotation entry. The caller hands the new key to the writer for after the commit."""
    old = writer.signer
    if new_signer.key_id == old.key_id:
        raise LogError(f"key rotation: the new key is the current key ({old.fingerprint})")
    writer.checkpoint(now)
    at_us = us_from_at(now)
    message = rotation_message(writer.origin, old.public.raw, new_signer.public.raw, at_us)
    conn.execute(
        "INSERT INTO keys (key_id, public, added_at, prev_key_id, sig_old, sig_new)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (
            new_signer.key_id,
            new_signer.public.raw,
            at_us,
            old.key_id,
            old.sign(message),
            new_signer.sign(message),
        ),
    )
    gateway_entry: AppendedEntry | None = None
    for name in writer.log_names():  # the box's own log among them, created if it had no entry
        customer = None if name == GATEWAY_CHAIN else name
        record = rotation_message_v2(
            writer.origin_of(name),
            writer.tree_size(customer),
            old.public.raw,
            new_signer.public.raw,
        )
        entry = writer.append([rotation_draft(customer, now, old, new_signer, record)])[0]
        if name == GATEWAY_CHAIN:
            gateway_entry = entry
    assert gateway_entry is not None, "log_names() names the box's own log"
    return gateway_entry
