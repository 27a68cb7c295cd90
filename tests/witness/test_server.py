"""Every status code of c2sp.org/tlog-witness add-checkpoint, from a raw HTTP client, against a
real ``einblick witness serve`` process on loopback."""

from __future__ import annotations

import base64

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.merkle import EMPTY_ROOT
from gateway.log.note import Checkpoint, Signer, open_note, sign_note
from gateway.witness.protocol import MAX_BODY, request_body
from tests.witness.conftest import WitnessFactory, WitnessProcess
from tests.witness.tinylog import TinyLog

ORIGIN = "einblick.test/box-1/baeckerei-schmidt"


async def post(witness: WitnessProcess, body: bytes) -> tuple[int, str, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{witness.url}/add-checkpoint", data=body) as response,
    ):
        return response.status, response.content_type, await response.text()


async def followed(witnesses: WitnessFactory) -> tuple[WitnessProcess, TinyLog]:
    witness = await witnesses()
    log = TinyLog(ORIGIN)
    witness.follow(ORIGIN, log.verifier.vkey)
    return witness, log


async def test_cosigns_a_first_checkpoint_and_its_extension(witnesses: WitnessFactory) -> None:
    witness, log = await followed(witnesses)
    log.append(5)
    status, _, lines = await post(witness, request_body(0, [], log.checkpoint()))
    assert status == 200, lines
    note = log.checkpoint() + lines
    opened = open_note(note, [witness.verifier])
    assert opened.verified == (witness.verifier,)
    assert opened.timestamps[0] is not None and opened.timestamps[0] > 0
    log.append(8)
    status, _, lines = await post(witness, request_body(5, log.proof(5), log.checkpoint()))
    assert status == 200
    open_note(log.checkpoint() + lines, [witness.verifier])
    # The same checkpoint again, from its own size with an empty proof: cosigned again.
    status, _, _ = await post(witness, request_body(13, [], log.checkpoint()))
    assert status == 200


async def test_unknown_origin_is_404(witnesses: WitnessFactory) -> None:
    witness, _ = await followed(witnesses)
    stranger = TinyLog("einblick.test/box-1/somebody-else")
    stranger.append(3)
    status, _, text = await post(witness, request_body(0, [], stranger.checkpoint()))
    assert status == 404
    assert "does not follow" in text


async def test_untrusted_or_bad_signature_is_403(witnesses: WitnessFactory) -> None:
    witness, log = await followed(witnesses)
    log.append(3)
    impostor = Signer(ORIGIN, Ed25519PrivateKey.generate())  # same name, another key
    status, _, _ = await post(witness, request_body(0, [], log.checkpoint(signers=[impostor])))
    assert status == 403
    # The trusted key's name and ID, but a signature over other text: malformed per signed-note.
    good = log.checkpoint()
    forged = good.replace(f"\n{len(log.leaves)}\n", "\n4\n", 1)
    status, _, text = await post(witness, request_body(0, [], forged))
    assert status == 403
    assert "does not match" in text
    # A valid signature does not help when an untrusted key also signed: ignored, still 200.
    both = sign_note(Checkpoint(ORIGIN, 3, log.root(3)).text, [impostor, log.signer])
    status, _, _ = await post(witness, request_body(0, [], both))
    assert status == 200


async def test_malformed_and_old_above_new_are_400(witnesses: WitnessFactory) -> None:
    witness, log = await followed(witnesses)
    log.append(4)
    note = log.checkpoint()
    for body in (
        b"old 01\n\n" + note.encode(),  # leading zero
        b"old x\n\n" + note.encode(),
        b"new 0\n\n" + note.encode(),
        b"old 0\n" + note.encode(),  # no blank line before the checkpoint
        b"old 0\nnot-base64!\n\n" + note.encode(),
        request_body(0, [b"\x00" * 32] * 64, note),  # 64 proof lines, at most 63
        b"old 0\n\n\xff\xfe",
    ):
        status, _, _ = await post(witness, body)
        assert status == 400, body[:40]
    status, _, text = await post(witness, request_body(5, [], note))
    assert status == 400
    assert "above the checkpoint's size 4" in text


async def test_oversized_request_is_refused_unread(witnesses: WitnessFactory) -> None:
    witness, _ = await followed(witnesses)
    status, _, _ = await post(witness, b"old 0\n\n" + b"x" * (MAX_BODY + 1))
    assert status == 413


async def test_wrong_old_size_is_409_with_the_held_size(witnesses: WitnessFactory) -> None:
    witness, log = await followed(witnesses)
    log.append(7)
    assert (await post(witness, request_body(0, [], log.checkpoint())))[0] == 200
    log.append(3)
    status, content_type, body = await post(witness, request_body(0, [], log.checkpoint()))
    assert (status, content_type, body) == (409, "text/x.tlog.size", "7\n")
    status, content_type, body = await post(
        witness, request_body(5, log.proof(5), log.checkpoint())
    )
    assert (status, content_type, body) == (409, "text/x.tlog.size", "7\n")


async def test_unprocessable_checkpoints_are_422(witnesses: WitnessFactory) -> None:
    witness, log = await followed(witnesses)
    # Size 0 with a root that is not the empty tree's.
    wrong_root = base64.b64encode(bytes([1]) * 32).decode()
    empty_wrong = sign_note(f"{ORIGIN}\n0\n{wrong_root}\n", [log.signer])
    assert (await post(witness, request_body(0, [], empty_wrong)))[0] == 422
    assert (await post(witness, request_body(0, [], log.checkpoint())))[0] == 200  # size 0
    assert log.checkpoint().split("\n")[2] == base64.b64encode(EMPTY_ROOT).decode()
    log.append(6)
    # A proof from size 0 must be empty.
    status, _, _ = await post(witness, request_body(0, [b"\x02" * 32], log.checkpoint()))
    assert status == 422
    assert (await post(witness, request_body(0, [], log.checkpoint())))[0] == 200
    # The same size with another root: a fork.
    fork = log.rewritten(keep=2, extra=4)
    status, _, text = await post(witness, request_body(6, [], fork.checkpoint()))
    assert status == 422
    assert "different root" in text
    # A longer rewritten history with a proof from the cosigned size: does not verify.
    fork.append(5)
    status, _, text = await post(witness, request_body(6, fork.proof(6), fork.checkpoint()))
    assert status == 422
    assert "not an extension of the cosigned size 6" in text
    # The honest log still gets its next cosignature.
    log.append(5)
    assert (await post(witness, request_body(6, log.proof(6), log.checkpoint())))[0] == 200


async def test_monitoring_endpoint_serves_the_cosigned_checkpoint(
    witnesses: WitnessFactory,
) -> None:
    import hashlib

    witness, log = await followed(witnesses)
    log.append(9)
    status, _, lines = await post(witness, request_body(0, [], log.checkpoint()))
    assert status == 200
    origin_hash = hashlib.sha256(ORIGIN.encode()).hexdigest()
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{witness.url}/{origin_hash}/checkpoint") as response,
    ):
        assert response.status == 200
        served = await response.text()
    assert served == log.checkpoint() + lines
    opened = open_note(served, [witness.verifier, log.verifier])
    assert set(opened.verified) == {witness.verifier, log.verifier}
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{witness.url}/{'0' * 64}/checkpoint") as response,
    ):
        assert response.status == 404
