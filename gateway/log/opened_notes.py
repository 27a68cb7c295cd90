"""Signed notes already verified, kept by their exact text and the exact keys they were checked
with, so a viewer does not check the same Ed25519 signature again on every page.

The customer portal's entry page checked the covering checkpoint's signature twice per request
(the entry's proof and the checkpoint's ✓) and its download page once: about a third of those
pages' time on the log's thread. A checkpoint never changes once signed, so a note that verified
under a set of keys verifies again under those keys; what is kept is that fact, by the note's
whole text (cosignatures included) and the verifiers (name, type, public key), nothing less:

- a note that differs in any character, or is checked against any other key, is a new key in
  this memo and is checked in full (a tampered row is never taken for the one that verified);
- a note that fails is never kept: it is checked again, and fails again, every time;
- bounded by the bytes of the notes kept (``LIMIT``), oldest first out; a forgotten note is
  only checked again.

Each reader holds its own (``gateway.log.reader``), so a reader bound to one customer keeps only
the notes of that customer's tree it has shown.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.cache import SizedCache
from gateway.log.note import OpenedNote, Verifier, open_note

__all__ = ["LIMIT", "OpenedNotes"]

LIMIT = 1 << 20  # bytes of note text kept: ~2,500 checkpoints with a witness or two
_OVERHEAD = 200  # per kept note: the key tuple, the result, the dictionary slot


class OpenedNotes:
    """``open_note`` with a bounded memo of the notes that verified."""

    def __init__(self, limit: int = LIMIT) -> None:
        self._kept: SizedCache[tuple[str, tuple[Verifier, ...]], OpenedNote] = SizedCache(
            limit, lambda key, _: len(key[0]) + _OVERHEAD
        )
        self.checked = 0  # notes checked in full (what the tests count)

    def __len__(self) -> int:
        return len(self._kept)

    def open(self, note: str, verifiers: Sequence[Verifier]) -> OpenedNote:
        """As ``open_note``: the opened note, or ``NoteError``; the signatures are checked
        unless exactly this note verified under exactly these keys before."""
        key = (note, tuple(verifiers))
        found = self._kept.get(key)
        if found is not None:
            return found
        self.checked += 1
        opened = open_note(note, verifiers)  # NoteError: not kept, checked again next time
        self._kept.put(key, opened)
        return opened
