"""The memo of verified notes: a note that verified is not checked again under the same keys;
any other text or key is checked in full; a failure is never kept; memory is bounded."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.merkle import EMPTY_ROOT
from gateway.log.note import Checkpoint, NoteError, Signer, open_note, sign_note
from gateway.log.opened_notes import OpenedNotes

ORIGIN = "box.example/einblick/baeckerei"


def _signer(name: str = ORIGIN) -> Signer:
    return Signer(name, Ed25519PrivateKey.generate())


def _note(signer: Signer, size: int = 0) -> str:
    root = EMPTY_ROOT if size == 0 else bytes([size % 256]) * 32
    return sign_note(Checkpoint(signer.name, size, root).text, [signer])


def _flip_signature(note: str) -> str:
    """The same note with one base64 character of its signature changed."""
    last = note.rstrip("\n")
    position = len(last) - 3  # inside the signature, before any padding
    swapped = "A" if last[position] != "A" else "B"
    return last[:position] + swapped + last[position + 1 :] + "\n"


def test_a_note_that_verified_is_checked_once_and_opens_as_open_note_does() -> None:
    signer = _signer()
    note = _note(signer, 5)
    notes = OpenedNotes()
    first = notes.open(note, [signer.verifier])
    again = notes.open(note, [signer.verifier])
    assert first == again == open_note(note, [signer.verifier])
    assert notes.checked == 1
    assert len(notes) == 1


def test_a_changed_note_is_checked_in_full_after_the_genuine_one_was_kept() -> None:
    signer = _signer()
    note = _note(signer, 5)
    notes = OpenedNotes()
    notes.open(note, [signer.verifier])
    with pytest.raises(NoteError, match="does not match the text"):
        notes.open(_flip_signature(note), [signer.verifier])
    forged = note.replace("\n5\n", "\n6\n", 1)  # the text changed, the signature kept
    with pytest.raises(NoteError, match="does not match the text"):
        notes.open(forged, [signer.verifier])
    assert notes.checked == 3


def test_the_same_note_under_another_key_is_not_taken_as_verified() -> None:
    signer, other = _signer(), _signer()  # same name (the origin), another key
    note = _note(signer, 5)
    notes = OpenedNotes()
    notes.open(note, [signer.verifier])
    with pytest.raises(NoteError, match="not signed by any trusted key"):
        notes.open(note, [other.verifier])


def test_a_note_that_fails_is_not_kept_and_fails_every_time() -> None:
    signer = _signer()
    bad = _flip_signature(_note(signer, 5))
    notes = OpenedNotes()
    for _ in range(3):
        with pytest.raises(NoteError):
            notes.open(bad, [signer.verifier])
    assert notes.checked == 3
    assert len(notes) == 0


def test_the_memo_is_bounded_by_the_bytes_of_the_notes_it_keeps() -> None:
    signer = _signer()
    notes = OpenedNotes(limit=2000)
    for size in range(1, 200):
        notes.open(_note(signer, size), [signer.verifier])
    assert 0 < len(notes) < 10  # each note ~150 bytes + the per-note overhead
    assert notes.checked == 199
