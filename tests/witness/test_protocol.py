"""c2sp.org/tlog-witness add-checkpoint without I/O: the request's bytes read strictly and
bounded, and each verdict with the status the spec fixes, in the spec's order."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.merkle import EMPTY_ROOT
from gateway.log.note import Checkpoint, Signer, sign_note
from gateway.witness.protocol import (
    MAX_BODY,
    MAX_PROOF_LINES,
    Latest,
    ProtocolError,
    Verdict,
    judge,
    parse_request,
    parse_size,
    request_body,
)
from tests.witness.tinylog import TinyLog

ORIGIN = "einblick.test/box-1/baeckerei-schmidt"
HASH = base64.b64encode(bytes(32)).decode()


def _log(size: int = 20) -> TinyLog:
    log = TinyLog(ORIGIN)
    log.append(size)
    return log


def test_a_request_survives_the_round_trip_byte_for_byte() -> None:
    log = _log()
    note = log.checkpoint(20)
    request = parse_request(request_body(8, log.proof(8, 20), note))
    assert request.old == 8
    assert request.proof == tuple(log.proof(8, 20))
    assert request.note == note
    assert request.text == Checkpoint(ORIGIN, 20, log.root(20)).text


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"old 0\n" + b"\xff" + b"\n\n", "not UTF-8"),
        (b"old 0\n", "blank line"),
        (b"size 0\n\nnote", "'old N'"),
        (b"old 01\n\nnote", "leading zeroes"),
        (b"old -1\n\nnote", "leading zeroes"),
        (b"old 12345678901234567890\n\nnote", "larger than any tree size"),
        (b"old 1\nnot*base64\n\nnote", "proof line 1 is not base64"),
        (b"old 1\n" + base64.b64encode(bytes(31)) + b"\n\nnote", "31 bytes, not 32"),
    ],
)
def test_a_malformed_request_is_refused_saying_where(body: bytes, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        parse_request(body)


def test_at_most_63_proof_lines_are_read() -> None:
    at_limit = ("old 1\n" + f"{HASH}\n" * MAX_PROOF_LINES + "\nnote").encode()
    assert len(parse_request(at_limit).proof) == MAX_PROOF_LINES
    with pytest.raises(ProtocolError, match="64 proof lines"):
        parse_request(("old 1\n" + f"{HASH}\n" * 64 + "\nnote").encode())


def test_a_body_above_the_bound_is_refused_before_it_is_read() -> None:
    assert parse_request(b"old 0\n\n" + b"x" * (MAX_BODY - 7)).old == 0
    with pytest.raises(ProtocolError, match=f"more than {MAX_BODY}"):
        parse_request(b"old 0\n\n" + b"x" * (MAX_BODY - 6))


def test_a_409_body_is_one_decimal_line() -> None:
    assert parse_size(b"42\n") == 42
    assert parse_size(b"0\n") == 0
    for body in (b"42", b"42\n43\n", b"042\n", b"-1\n", b"\xff\n", b"\n"):
        with pytest.raises(ProtocolError):
            parse_size(body)


def _judge(body: bytes, log: TinyLog, latest: Latest | None) -> Verdict:
    keys = {ORIGIN: (log.verifier,)}
    return judge(parse_request(body), keys, latest)


def test_first_contact_cosigns_from_size_0() -> None:
    log = _log()
    verdict = _judge(request_body(0, [], log.checkpoint(20)), log, None)
    assert (verdict.status, verdict.ok) == (200, True)
    assert verdict.checkpoint == Checkpoint(ORIGIN, 20, log.root(20))


def test_an_extension_with_a_valid_proof_is_cosigned() -> None:
    log = _log()
    verdict = _judge(
        request_body(8, log.proof(8, 20), log.checkpoint(20)), log, Latest(8, log.root(8))
    )
    assert verdict.ok and verdict.checkpoint is not None and verdict.checkpoint.size == 20


def test_an_unknown_origin_is_404_whatever_else_is_wrong() -> None:
    other = TinyLog("einblick.test/box-1/someone-else")
    other.append(3)
    verdict = _judge(request_body(7, [], other.checkpoint(3)), _log(), None)
    assert verdict.status == 404 and "someone-else" in verdict.reason


def test_a_checkpoint_of_two_lines_is_400() -> None:
    log = _log()
    note = sign_note(f"{ORIGIN}\n20\n", [log.signer])
    verdict = _judge(request_body(0, [], note), log, None)
    assert verdict.status == 400 and "three lines" in verdict.reason


def test_a_signature_by_an_untrusted_key_is_403() -> None:
    log = _log()
    impostor = Signer(ORIGIN, Ed25519PrivateKey.generate())
    verdict = _judge(request_body(0, [], log.checkpoint(20, signers=[impostor])), log, None)
    assert verdict.status == 403 and verdict.checkpoint is None and not verdict.evidence


def test_an_old_size_above_the_checkpoint_is_400() -> None:
    log = _log()
    verdict = _judge(request_body(21, [], log.checkpoint(20)), log, Latest(21, bytes(32)))
    assert verdict.status == 400 and "above" in verdict.reason


def test_an_old_size_the_witness_did_not_cosign_is_409_with_the_held_size() -> None:
    log = _log()
    verdict = _judge(
        request_body(5, log.proof(5, 20), log.checkpoint(20)), log, Latest(8, log.root(8))
    )
    assert (verdict.status, verdict.latest_size) == (409, 8)
    first = _judge(request_body(5, log.proof(5, 20), log.checkpoint(20)), log, None)
    assert (first.status, first.latest_size) == (409, 0)


def test_a_size_0_checkpoint_must_carry_the_empty_root() -> None:
    log = _log(0)
    good = _judge(
        request_body(0, [], sign_note(Checkpoint(ORIGIN, 0, EMPTY_ROOT).text, [log.signer])),
        log,
        None,
    )
    assert good.ok
    text = f"{ORIGIN}\n0\n{HASH}\n"
    bad = _judge(request_body(0, [], sign_note(text, [log.signer])), log, None)
    assert bad.status == 422 and bad.evidence and "empty tree" in bad.reason


def test_a_proof_from_size_0_is_422() -> None:
    log = _log()
    verdict = _judge(request_body(0, log.proof(1, 20), log.checkpoint(20)), log, None)
    assert verdict.status == 422 and verdict.evidence


def test_a_rewritten_history_is_422_evidence() -> None:
    log = _log()
    fork = log.rewritten(keep=5, extra=15)
    verdict = _judge(
        request_body(8, fork.proof(8, 20), fork.checkpoint(20)), log, Latest(8, log.root(8))
    )
    assert verdict.status == 422 and verdict.evidence and "not an extension" in verdict.reason
    assert verdict.checkpoint == Checkpoint(ORIGIN, 20, fork.root(20))


def test_the_same_size_with_another_root_is_422() -> None:
    log = _log()
    fork = log.rewritten(keep=5, extra=15)
    verdict = _judge(request_body(20, [], fork.checkpoint(20)), log, Latest(20, log.root(20)))
    assert verdict.status == 422 and verdict.evidence
    again = _judge(request_body(20, [], log.checkpoint(20)), log, Latest(20, log.root(20)))
    assert again.ok
