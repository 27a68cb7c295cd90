"""Signed notes, checkpoints, cosignatures and tlog proofs in the C2SP text formats."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.merkle import EMPTY_ROOT, leaf_hash
from gateway.log.note import (
    COSIGNATURE_TYPE,
    Checkpoint,
    NoteError,
    Signer,
    TlogProof,
    Verifier,
    cosign,
    open_note,
    sign_note,
)

# The example of c2sp.org/signed-note, verbatim: another implementation's output, not ours.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n"
    "\u2014 example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3"
    "mFXmRKuwHjG1Yu72IneyaQM=\n"
)


def test_the_specs_own_example_verifies() -> None:
    opened = open_note(SPEC_NOTE, [Verifier.parse(SPEC_VKEY)])
    assert opened.text == "This is an example message.\n"
    assert [v.name for v in opened.verified] == ["example.com/foo"]


def test_the_specs_example_altered_by_one_character_is_refused() -> None:
    with pytest.raises(NoteError, match="altered"):
        open_note(
            SPEC_NOTE.replace("example message", "example massage"), [Verifier.parse(SPEC_VKEY)]
        )


def test_a_vkey_whose_id_does_not_match_its_key_is_refused() -> None:
    with pytest.raises(NoteError, match="key ID"):
        Verifier.parse(SPEC_VKEY.replace("530d903a", "530d903b"))


def signer(name: str = "box.example/einblick/acme", sig_type: int = 0x01) -> Signer:
    return Signer(name, Ed25519PrivateKey.generate(), sig_type)


def test_sign_and_open_round_trip_and_unknown_keys_are_kept_not_trusted() -> None:
    log, other = signer(), signer("someone.else/log")
    text = Checkpoint("box.example/einblick/acme", 0, EMPTY_ROOT).text
    note = sign_note(text, [log, other])
    opened = open_note(note, [log.verifier])
    assert opened.verified == (log.verifier,)
    assert [s.name for s in opened.unknown] == ["someone.else/log"]
    with pytest.raises(NoteError, match="not signed by any trusted key"):
        open_note(note, [signer().verifier])


def test_a_known_key_with_a_bad_signature_rejects_the_whole_note() -> None:
    log = signer()
    note = sign_note("a\n", [log])
    line = note.split("\n\n")[1]
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[-1] ^= 1
    forged = "a\n\n\u2014 " + log.name + " " + base64.b64encode(bytes(raw)).decode() + "\n"
    with pytest.raises(NoteError, match="does not match"):
        open_note(forged, [log.verifier])


def test_cosignatures_verify_with_their_timestamp_and_bind_it() -> None:
    log, witness = signer(), signer("witness.example/w1", COSIGNATURE_TYPE)
    text = Checkpoint("box.example/einblick/acme", 3, leaf_hash(b"r")).text
    note = sign_note(text, [log]) + cosign(witness, text, 1_790_000_000)
    opened = open_note(note, [log.verifier, witness.verifier])
    assert opened.timestamps == (None, 1_790_000_000)
    # The timestamp is signed: moving it breaks the cosignature.
    line = cosign(witness, text, 1_790_000_000)
    raw = bytearray(base64.b64decode(line.split(" ")[2]))
    raw[11] ^= 1
    moved = note.replace(
        line, "\u2014 witness.example/w1 " + base64.b64encode(bytes(raw)).decode() + "\n"
    )
    with pytest.raises(NoteError):
        open_note(moved, [log.verifier, witness.verifier])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("origin\n1\n", "three non-empty lines"),
        ("origin\n01\n" + base64.b64encode(b"x" * 32).decode() + "\n", "decimal"),
        ("origin\n1\n" + base64.b64encode(b"x" * 31).decode() + "\n", "31 bytes"),
        ("origin\n0\n" + base64.b64encode(b"x" * 32).decode() + "\n", "empty tree"),
        ("origin\n1\n" + base64.b64encode(b"x" * 32).decode() + "\next\n", "extension"),
        ("origin\n1\n!!!\n", "base64"),
    ],
)
def test_malformed_checkpoints_are_refused_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(NoteError, match=message):
        Checkpoint.parse(text)


def test_notes_with_control_characters_or_too_many_signatures_are_refused() -> None:
    log = signer()
    with pytest.raises(NoteError, match="control"):
        open_note("a\x1b[2J\n\n" + log.sign("a\n"), [log.verifier])
    many = "a\n\n" + log.sign("a\n") * 65
    with pytest.raises(NoteError, match="more than"):
        open_note(many, [log.verifier])


def test_a_tlog_proof_round_trips_in_the_c2sp_layout() -> None:
    log = signer()
    note = sign_note(Checkpoint(log.name, 2, leaf_hash(b"r")).text, [log])
    proof = TlogProof(1, (leaf_hash(b"a"),), note, extra=b"ctx")
    text = proof.text
    assert text.splitlines()[:3] == ["c2sp.org/tlog-proof@v1", "extra Y3R4", "index 1"]
    assert TlogProof.parse(text) == proof
    with pytest.raises(NoteError, match="index"):
        TlogProof.parse(text.replace("index 1", "index 01"))


def test_a_vkey_whose_base64_holds_a_plus_parses() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    for _ in range(200):  # about one key in three has a '+' in its base64
        signer = Signer("witness.example/w1", Ed25519PrivateKey.generate(), 0x04)
        vkey = signer.verifier.vkey
        if "+" in vkey.split("+", 2)[2]:
            assert Verifier.parse(vkey) == signer.verifier
            return
    raise AssertionError("no key with '+' in its base64 in 200 tries")
