"""The witness's state: checking the held size and storing the new one are one transaction, so
the spec's race (a smaller checkpoint stored after a larger one was cosigned) cannot happen,
even with two witness processes on one directory."""

from __future__ import annotations

import threading
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.log.note import COSIGNATURE_TYPE, Signer, cosign
from gateway.witness.protocol import AddCheckpoint, parse_request, request_body
from gateway.witness.state import Answer, WitnessState
from tests.witness.tinylog import TinyLog

ORIGIN = "einblick.test/box-1/baeckerei-schmidt"


def test_two_writers_racing_from_one_size_cosign_only_one(tmp_path: Path) -> None:
    log = TinyLog(ORIGIN)
    log.append(20)
    trusted = {ORIGIN: (log.verifier,)}
    witness = Signer("witness.example/w1", Ed25519PrivateKey.generate(), COSIGNATURE_TYPE)
    path = tmp_path / "witness.db"
    first, second = WitnessState(path), WitnessState(path)  # two processes' connections
    start = parse_request(request_body(0, [], log.checkpoint(5)))
    assert first.add_checkpoint(start, b"", trusted, lambda t, s: cosign(witness, t, s)).verdict.ok
    larger = parse_request(request_body(5, log.proof(5, 20), log.checkpoint(20)))
    smaller = parse_request(request_body(5, log.proof(5, 12), log.checkpoint(12)))
    inside, other_done = threading.Event(), threading.Event()
    answers: dict[str, Answer] = {}

    def slow_cosign(text: str, stamp: int) -> str:
        # The larger request holds its transaction here while the smaller one tries to run.
        inside.set()
        other_done.wait(timeout=1.0)
        return cosign(witness, text, stamp)

    def submit(label: str, state: WitnessState, request: AddCheckpoint, sign: object) -> None:
        answers[label] = state.add_checkpoint(request, b"", trusted, sign)  # type: ignore[arg-type]
        if label == "smaller":
            other_done.set()

    a = threading.Thread(target=submit, args=("larger", first, larger, slow_cosign))
    a.start()
    assert inside.wait(timeout=10)
    b = threading.Thread(
        target=submit,
        args=("smaller", second, smaller, lambda t, s: cosign(witness, t, s)),
    )
    b.start()
    a.join(timeout=30)
    b.join(timeout=30)
    assert answers["larger"].verdict.status == 200
    # The smaller one waited for the larger one's commit and was then told the new size.
    assert (answers["smaller"].verdict.status, answers["smaller"].verdict.latest_size) == (409, 20)
    held = first.latest(ORIGIN)
    assert held is not None and held.size == 20
    first.close()
    second.close()
