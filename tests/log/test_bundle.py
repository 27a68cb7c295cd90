"""Bundles verify offline with the public key alone; any change is detected, strictly."""

from __future__ import annotations

import base64
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import LogError
from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.jcs import canonical
from gateway.log.keys import PublicKey, Signer
from gateway.log.leaf import ENTRY_SIZE
from gateway.log.note import Signer as NoteSigner
from gateway.log.note import Verifier, cosign
from gateway.log.verdict import INCOMPLETE, TAMPERED, UnusableInput, WitnessPolicy
from tests.log.conftest import ORIGIN, T0, Log, make_draft

C = "baeckerei-schmidt"


def fill(log: Log, batches: int = 3, per: int = 8) -> None:
    for b in range(batches):
        log.write(
            [
                make_draft(i, customer=C if i % 3 else "metallbau-huber")
                for i in range(b * per, (b + 1) * per)
            ]
        )


def lines(bundle: bytes) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in bundle.splitlines()]


def dump(rows: list[dict[str, object]]) -> bytes:
    return b"".join(canonical(r) + b"\n" for r in rows)


def test_bundle_verifies_with_the_key_alone_after_the_db_is_gone(log: Log, signer: Signer) -> None:
    fill(log)
    bundle = export_customer(log.path, C)
    log.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(log.path) + suffix).unlink(missing_ok=True)
    public = PublicKey(signer.public.raw)  # as a customer would have it: just the key
    verdict = verify_bundle(bundle, public)
    assert verdict.ok, verdict.problem
    assert verdict.origin == f"{ORIGIN}/{C}" and verdict.customer == C
    assert verdict.size == 16 and verdict.covered == 16 and verdict.checkpoints == 3


def test_bundle_holds_no_other_customer(log: Log) -> None:
    fill(log)
    bundle = export_customer(log.path, C)
    assert b"metallbau-huber" not in bundle


def test_altered_entry_time_fails_naming_it(log: Log, signer: Signer) -> None:
    fill(log)
    rows = lines(export_customer(log.path, C))
    chunk = next(r for r in rows if r["t"] == "entries")
    data = bytearray(base64.b64decode(str(chunk["data"])))
    data[6 * ENTRY_SIZE + 16] ^= 1  # the last byte of entry 6's time (v3: entries, then leaves)
    chunk["data"] = base64.b64encode(bytes(data)).decode()
    verdict = verify_bundle(dump(rows), signer.public)
    assert verdict.problem is not None and verdict.problem.code == TAMPERED
    assert verdict.problem.index == 6
    assert str(verdict.problem).startswith("entry 6: entry bytes do not hash to the leaf")


def test_wrong_key_fails(log: Log) -> None:
    fill(log)
    verdict = verify_bundle(export_customer(log.path, C), Signer.generate().public)
    assert verdict.problem is not None and verdict.problem.code == TAMPERED


def test_erased_content_exports_without_it_and_verifies(log: Log, signer: Signer) -> None:
    fill(log)
    log.conn.execute("BEGIN")
    log.writer.erase_subject(f"{C}/oven-1", T0 + timedelta(hours=1), "customer")
    log.writer.checkpoint(T0 + timedelta(hours=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    bundle = export_customer(log.path, C)
    verdict = verify_bundle(bundle, signer.public)
    assert verdict.ok, verdict.problem
    assert b"oven-1/telemetry" not in bundle
    assert any(r["t"] == "content" for r in lines(bundle))  # other devices' still held
    # without the erasure entry, the same missing content is tampering
    rows = lines(bundle)
    erasure = next(
        str(r["digest"]) for r in rows if r["t"] == "body" and '"kind":"erasure"' in str(r["body"])
    )
    for row in rows:
        if row["t"] == "body" and row["digest"] == erasure:
            row["body"] = str(row["body"]).replace('"erasure"', '"gateway_event"')
    assert verify_bundle(dump(rows), signer.public).problem is not None


def test_unknown_customer_is_an_error(log: Log) -> None:
    fill(log)
    with pytest.raises(LogError, match="no log for customer 'nobody'"):
        export_customer(log.path, "nobody")


def test_an_unsigned_tail_is_incomplete_never_ok(log: Log, signer: Signer) -> None:
    log.write([make_draft(i, customer=C) for i in range(4)])
    log.write([make_draft(4, customer=C)], checkpoint=False)
    verdict = verify_bundle(export_customer(log.path, C), signer.public)
    assert verdict.problem is not None and verdict.problem.code == INCOMPLETE
    assert verdict.problem.index == 4 and verdict.covered == 4


def test_an_export_while_the_gateway_appends_ends_at_its_newest_checkpoint(
    log: Log, signer: Signer
) -> None:
    """``einblick export`` signs, then exports, while a running gateway goes on appending: the
    bundle ends at the newest checkpoint, so it verifies on its own (a kept bundle that did not
    would be refused by ``verify --since``)."""
    log.write([make_draft(i, customer=C) for i in range(4)])
    log.write([make_draft(4, customer=C)], checkpoint=False)  # appended after the signature
    verdict = verify_bundle(export_customer(log.path, C, signed_only=True), signer.public)
    assert verdict.ok and verdict.covered == 4


def test_witness_policy_counts_cosignatures(log: Log, signer: Signer) -> None:
    log.write([make_draft(i, customer=C) for i in range(4)])
    witness = NoteSigner("witness.example/w1", Signer.generate()._private, 0x04)
    rows = lines(export_customer(log.path, C))
    policy = WitnessPolicy((witness.verifier,), 1)
    verdict = verify_bundle(dump(rows), signer.public, witnesses=policy)
    assert verdict.problem is not None and verdict.problem.code == INCOMPLETE
    for row in rows:
        if row["t"] == "checkpoint":
            note = str(row["note"])
            text = note[: note.find("\n\n") + 1]
            row["note"] = note + cosign(witness, text, 1_780_000_000)
    assert verify_bundle(dump(rows), signer.public, witnesses=policy).ok
    other = Verifier("witness.example/w2", 0x04, Signer.generate().public.raw)
    two = WitnessPolicy((witness.verifier, other), 2)
    assert verify_bundle(dump(rows), signer.public, witnesses=two).code == INCOMPLETE
    with pytest.raises(UnusableInput):
        WitnessPolicy((witness.verifier,), 2)


def test_empty_or_malformed_bundle_is_unusable(signer: Signer) -> None:
    header = {"t": "header", "format": "einblick-bundle/v3", "origin": "o", "customer": C}
    with pytest.raises(UnusableInput):
        verify_bundle(orjson.dumps(header, option=orjson.OPT_SORT_KEYS) + b"\n", signer.public)
    with pytest.raises(UnusableInput):
        verify_bundle(b"", signer.public)


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, PublicKey]:
    base = tmp_path_factory.mktemp("bundle")
    signer = Signer.generate(base / "k")
    log = Log(base / "log.db", signer)
    log.write([make_draft(i, customer=C) for i in range(4)])
    log.write([make_draft(i, customer=C) for i in range(4, 7)])
    bundle = export_customer(log.path, C)
    log.close()
    return bundle, signer.public


def test_small_bundle_verifies(small_bundle: tuple[bytes, PublicKey]) -> None:
    bundle, public = small_bundle
    verdict = verify_bundle(bundle, public)
    assert verdict.ok and verdict.covered == 7


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(position=st.integers(min_value=0), delta=st.integers(min_value=1, max_value=255))
def test_any_single_byte_change_is_detected(
    small_bundle: tuple[bytes, PublicKey], position: int, delta: int
) -> None:
    bundle, public = small_bundle
    at = position % len(bundle)
    changed = bytearray(bundle)
    changed[at] = (changed[at] + delta) % 256
    try:
        verdict = verify_bundle(bytes(changed), public)
    except UnusableInput:
        return
    assert not verdict.ok, f"byte {at} ({bundle[at - 20 : at + 20]!r}) changed undetected"
