"""Export bundles verify offline with the public key alone; any change is detected."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.errors import BundleError, LogError
from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.keys import PublicKey, Signer
from tests.log.conftest import T0, Log, make_draft

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


def test_bundle_verifies_with_the_key_alone_after_the_db_is_gone(log: Log, signer: Signer) -> None:
    fill(log)
    bundle = export_customer(log.path, C)
    log.close()
    for suffix in ("", "-wal", "-shm"):
        Path(str(log.path) + suffix).unlink(missing_ok=True)
    public = PublicKey(signer.public.raw)  # as a customer would have it: just the key
    report = verify_bundle(bundle, public)
    assert report.ok, report.summary()
    assert report.chains[0].customer == C
    assert report.entries == 16 and report.unsigned == 0


def test_bundle_holds_no_other_customer(log: Log) -> None:
    fill(log)
    bundle = export_customer(log.path, C)
    assert b"metallbau-huber" not in bundle


def test_altered_entry_fails_naming_it(log: Log, signer: Signer) -> None:
    fill(log)
    rows = lines(export_customer(log.path, C))
    entry = next(r for r in rows if r["t"] == "entry" and r["index"] == 6)
    entry["at"] = int(entry["at"]) + 1  # type: ignore[call-overload]
    bundle = b"".join(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) + b"\n" for r in rows)
    report = verify_bundle(bundle, signer.public)
    assert report.first is not None
    assert report.first.index == 6
    assert str(report.first).startswith(f"entry 6 of customer {C}: hash mismatch: expected")


def test_wrong_key_fails(log: Log) -> None:
    fill(log)
    report = verify_bundle(export_customer(log.path, C), Signer.generate().public)
    assert not report.ok


def test_since_export_starts_at_a_signed_checkpoint(log: Log, signer: Signer) -> None:
    fill(log, batches=4)
    since = make_draft(17).at  # inside the third batch
    bundle = export_customer(log.path, C, since)
    report = verify_bundle(bundle, signer.public)
    assert report.ok, report.summary()
    first = min(int(r["index"]) for r in lines(bundle) if r["t"] == "entry")  # type: ignore[call-overload]
    assert first > 0 and report.chains[0].start == first
    assert any(r["t"] == "anchor" for r in lines(bundle))
    at_first = min(int(r["at"]) for r in lines(bundle) if r["t"] == "entry")  # type: ignore[call-overload]
    assert at_first <= int((since - T0).total_seconds() * 1e6) + int(T0.timestamp() * 1e6)


def test_erased_content_exports_as_nulls_and_verifies(log: Log, signer: Signer) -> None:
    fill(log)
    log.conn.execute("BEGIN")
    log.writer.erase_subject(f"{C}/oven-1", T0 + timedelta(hours=1), "customer")
    log.writer.checkpoint(T0 + timedelta(hours=1))
    log.conn.execute("COMMIT")
    log.writer.committed()
    bundle = export_customer(log.path, C)
    report = verify_bundle(bundle, signer.public)
    assert report.ok, report.summary()
    assert b"oven-1/telemetry" not in bundle
    assert any(r["t"] == "entry" and r["salt"] for r in lines(bundle))  # others still held


def test_unknown_customer_is_an_error(log: Log) -> None:
    fill(log)
    with pytest.raises(LogError, match="no chain for customer 'nobody'"):
        export_customer(log.path, "nobody")


def test_empty_bundle_is_not_a_pass(signer: Signer) -> None:
    header = {"t": "header", "format": "einblick-bundle/v1", "origin": "o", "customer": C}
    report = verify_bundle(orjson.dumps(header, option=orjson.OPT_SORT_KEYS) + b"\n", signer.public)
    assert not report.ok


@pytest.fixture(scope="module")
def small_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, PublicKey]:
    base = tmp_path_factory.mktemp("bundle")
    signer = Signer.generate(base / "k")
    log = Log(base / "log.db", signer)
    log.write([make_draft(i, customer=C) for i in range(4)])
    log.write([make_draft(i, customer=C) for i in range(4, 6)])
    log.write([make_draft(6, customer=C)], checkpoint=False)  # an unsigned tail too
    bundle = export_customer(log.path, C)
    log.close()
    return bundle, signer.public


def test_small_bundle_verifies(small_bundle: tuple[bytes, PublicKey]) -> None:
    bundle, public = small_bundle
    report = verify_bundle(bundle, public)
    assert report.ok and report.unsigned == 1


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
        report = verify_bundle(bytes(changed), public)
    except BundleError:
        return
    assert not report.ok, f"byte {at} ({bundle[at - 20 : at + 20]!r}) changed undetected"
