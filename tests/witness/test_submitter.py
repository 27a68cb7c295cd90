"""A real gateway (Mosquitto, SQLite, Ed25519) submitting its checkpoints to a real witness
process on loopback: honest cosigning, a witness down and catching up, a rewritten log refused."""

from __future__ import annotations

import asyncio
import io
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from babel.numbers import format_decimal
from rich.console import Console

from gateway.devices.ports import free_port
from gateway.log.checkpoints import SignedCheckpoint, cosignature_lines, latest_checkpoints
from gateway.log.note import open_note
from gateway.operations.metrics import render as render_metrics
from gateway.operations.status_text import render_status
from gateway.witness.state import WitnessState
from gateway.witness.status import WitnessStatus
from tests.gateway.harness import Harness, running_gateway
from tests.witness.conftest import WitnessFactory, WitnessProcess, einblick, start_witness
from tui.i18n import Lang
from tui.local import LocalSource
from tui.model import Names, Overview
from tui.overview import render_overview

BAKERY = """
einblick_policy: 1
customer: baeckerei-schmidt
name: Bäckerei Schmidt
language: de
devices:
  - id: oven-1
    name: Backofen 1
    kind: oven
    topics:
      - pattern: "bakery/oven-1/telemetry"
        stream: telemetry
grants:
  - id: maintenance
    recipient: oven-maker
    purpose: {de: "Fernwartung der Öfen", en: "Remote maintenance of the ovens"}
    legal_basis: contract
    devices: [oven-1]
    topic: "ovens/{customer}/{device}"
    fields:
      temperature: keep
"""
CUSTOMER = "baeckerei-schmidt"
DEVICES = [(CUSTOMER, "oven-1", "Backofen 1")]


@asynccontextmanager
async def gateway_with(
    tmp_path: Path, witness: WitnessProcess, *, edits: dict[str, str] | None = None
) -> AsyncIterator[Harness]:
    entry = (
        f"einblick_config: 1\nwitnesses:\n  - name: verband\n    url: {witness.url}\n"
        f"    vkey: {witness.vkey}\n    retry_max_s: 1\n"
    )
    async with running_gateway(
        tmp_path,
        {"bakery.yaml": BAKERY},
        DEVICES,
        config_edits={"einblick_config: 1\n": entry, **(edits or {})},
    ) as harness:
        yield harness


T = TypeVar("T")


def read(harness: Harness, query: Callable[[sqlite3.Connection], T]) -> T:
    conn = sqlite3.connect(harness.gateway.config.database_path)
    try:
        return query(conn)
    finally:
        conn.close()


def overview_text(harness: Harness, lang: Lang) -> str:
    """The TUI's overview screen as text, from the running gateway's status."""
    console = Console(width=200, record=True, file=io.StringIO())
    overview = Overview(now_us=0, bucket_s=60, recipients=(), status=harness.gateway.status())
    console.print(render_overview(overview, Names(), lang))
    return console.export_text()


def witness_status(harness: Harness) -> WitnessStatus:
    (status,) = harness.gateway.status().witnesses
    return status


async def until(
    condition: Callable[[], bool], what: Callable[[], object], timeout: float = 30
) -> None:
    try:
        async with asyncio.timeout(timeout):
            while not condition():
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"timed out waiting; last state: {what()}") from None


async def send(harness: Harness, count: int, start: int = 0) -> None:
    oven = await harness.device(CUSTOMER, "oven-1")
    try:
        for i in range(start, start + count):
            await oven.publish("bakery/oven-1/telemetry", b'{"temperature": %d}' % i, 1)
    finally:
        await oven.close()


def customer_checkpoint(harness: Harness) -> SignedCheckpoint | None:
    found = [c for c in read(harness, latest_checkpoints) if c.chain == CUSTOMER]
    return found[0] if found else None


def newest(harness: Harness) -> SignedCheckpoint:
    checkpoint = customer_checkpoint(harness)
    assert checkpoint is not None
    return checkpoint


def caught_up(harness: Harness) -> bool:
    """The witness has cosigned the newest checkpoint of the customer's log."""
    checkpoint = customer_checkpoint(harness)
    if checkpoint is None:
        return False
    return bool(read(harness, lambda conn: cosignature_lines(conn, checkpoint.id)))


async def follow_all(harness: Harness, witness: WitnessProcess) -> None:
    """Once the customer's log has a checkpoint, give the witness this box's logs as an
    installer does: ``einblick witness logs`` written to the witness's logs.yaml."""
    await until(lambda: customer_checkpoint(harness) is not None, lambda: "no checkpoint yet")
    config = str(harness.gateway.config.source)
    code, out, err = await einblick("witness", "logs", "--config", config)
    assert code == 0, err
    origin = harness.gateway.writer.origin_of(CUSTOMER)
    assert f"origin: {origin}\n" in out
    witness.write_logs(out)


async def test_every_new_checkpoint_is_cosigned_and_stored_verbatim(
    tmp_path: Path, witnesses: WitnessFactory
) -> None:
    witness = await witnesses()
    async with gateway_with(tmp_path, witness) as h:
        await send(h, 3)
        await h.cloud.wait_for(3)
        # Until the witness is told about the logs, it answers 404: shown, nothing stops.
        await until(lambda: any(r.status == 404 for r in witness_status(h).refusals),
                    lambda: witness_status(h))  # fmt: skip
        assert "REFUSED baeckerei-schmidt (HTTP 404)" in render_status(h.gateway.status())
        await follow_all(h, witness)
        # No new entry: the refused checkpoint is offered again after retry_max_s (1 s here).
        await until(lambda: caught_up(h), lambda: witness_status(h))
        await until(
            lambda: "verband            up to date" in render_status(h.gateway.status()),
            lambda: render_status(h.gateway.status()),
        )
        await send(h, 2, start=3)
        await until(lambda: caught_up(h), lambda: witness_status(h))
        checkpoint = newest(h)
        (line,) = read(h, lambda conn: cosignature_lines(conn, checkpoint.id))
        # What is stored is exactly a signature line: appended to the stored note, the note
        # verifies under both the box's key and the witness's cosigner key.
        origin = h.gateway.writer.origin_of(CUSTOMER)
        box = h.gateway.signer.note_signer(origin).verifier
        opened = open_note(checkpoint.note + line, [box, witness.verifier])
        assert set(opened.verified) == {box, witness.verifier}
        assert line.startswith(f"— {witness.verifier.name} ") and line.endswith("\n")
        await until(lambda: not witness_status(h).refusals, lambda: witness_status(h))
        status = witness_status(h)
        assert status.reachable is True
        assert status.cosigned >= 1
        metrics = render_metrics(h.gateway.status())
        assert 'einblick_witness_up{witness="verband"} 1' in metrics
        newest_size = newest(h).size
    # The witness holds the same checkpoint (it persisted before it answered).
    state = WitnessState(witness.directory / "witness.db")
    try:
        held = state.latest(origin)
        assert held is not None and held.size == newest_size
    finally:
        state.close()


async def test_a_witness_down_never_stops_forwarding_and_catches_up(
    tmp_path: Path, witnesses: WitnessFactory
) -> None:
    port = free_port()
    witness = await witnesses(port=port)
    async with gateway_with(tmp_path, witness) as h:
        await send(h, 1)
        await h.cloud.wait_for(1)
        await follow_all(h, witness)
        await send(h, 1, start=1)
        await until(lambda: caught_up(h), lambda: witness_status(h))
        last_cosigned = newest(h).id
        await witness.stop()
        # Down: forwarding goes on, and status says how far cosigning falls behind.
        previous = last_cosigned
        for batch in range(2):  # two batches, a checkpoint after each
            await send(h, 10, start=2 + 10 * batch)
            await h.cloud.wait_for(12 + 10 * batch)
            await until(lambda p=previous: newest(h).id > p, lambda: newest(h))
            previous = newest(h).id
        await until(lambda: witness_status(h).reachable is False, lambda: witness_status(h))
        await until(lambda: witness_status(h).entries_behind >= 20, lambda: witness_status(h))
        down = witness_status(h)
        assert down.seconds_behind is not None and down.seconds_behind > 0
        text = render_status(h.gateway.status())
        assert f"BEHIND by {down.entries_behind:,} entries" in text
        assert "UNREACHABLE" in text
        tui = overview_text(h, "de")
        behind = format_decimal(down.entries_behind, locale="de")
        assert f"⚠ Zeuge verband: {behind} Einträge noch nicht gegengezeichnet" in tui
        assert "antwortet nicht: " in tui
        metrics = render_metrics(h.gateway.status())
        assert 'einblick_witness_up{witness="verband"} 0' in metrics
        assert (
            f'einblick_witness_entries_behind{{witness="verband"}} {down.entries_behind}' in metrics
        )
        signed_while_down = [c for c in read(h, _customer_checkpoints) if c > last_cosigned]
        assert len(signed_while_down) >= 2
        # Back on the same port with the same key and state: one request catches it up.
        back = await start_witness(witness.directory, port=port, init=False)
        try:
            await until(lambda: caught_up(h), lambda: witness_status(h))
            await until(lambda: witness_status(h).entries_behind == 0, lambda: witness_status(h))
            status = witness_status(h)
            assert status.reachable is True and status.seconds_behind is None
            assert "✓ witness verband: every checkpoint cosigned" in overview_text(h, "en")
            # It caught up with the newest checkpoint and a proof from the size it held: the
            # checkpoints signed while it was down were not sent one by one.
            for checkpoint_id in signed_while_down[:-1]:
                assert not read(h, lambda conn, c=checkpoint_id: cosignature_lines(conn, c))
        finally:
            await back.stop()


def _customer_checkpoints(conn: sqlite3.Connection) -> list[int]:
    return [
        int(r[0])
        for r in conn.execute(
            "SELECT k.id FROM checkpoints k JOIN chains c ON c.id = k.chain_id"
            " WHERE c.name = ? AND k.note IS NOT NULL",
            (CUSTOMER,),
        )
    ]


async def test_a_rewritten_log_is_refused_and_shown(
    tmp_path: Path, witnesses: WitnessFactory
) -> None:
    witness = await witnesses()
    async with gateway_with(tmp_path / "first", witness) as h:
        await send(h, 4)
        await h.cloud.wait_for(4)
        await follow_all(h, witness)
        await send(h, 1, start=4)
        await until(lambda: caught_up(h), lambda: witness_status(h))
        origin = h.gateway.writer.origin_of(CUSTOMER)
        cosigned_size = newest(h).size
        key = h.gateway.config.signing_key_path
        instance = h.gateway.config.instance
    # The box's operator starts the log again: same instance (origin), same key, another history.
    second = tmp_path / "second"
    async with running_gateway(
        second,
        {"bakery.yaml": BAKERY},
        DEVICES,
        config_edits={
            "einblick_config: 1\n": (
                f"einblick_config: 1\nwitnesses:\n  - name: verband\n    url: {witness.url}\n"
                f"    vkey: {witness.vkey}\n    retry_max_s: 1\n"
            ),
            "instance: ": f"signing_key: {key}\ninstance: {instance}\n# was: ",
        },
    ) as h:
        assert h.gateway.writer.origin_of(CUSTOMER) == origin
        # Shorter than what the witness cosigned: refused here (the witness's 409 says its size).
        await send(h, 1)
        await until(lambda: any(r.status == 0 for r in witness_status(h).refusals),
                    lambda: witness_status(h))  # fmt: skip
        assert "cut back or replaced" in witness_status(h).refusals[0].reason
        # Longer: a proof from the cosigned size over another history, refused by the witness.
        await send(h, cosigned_size + 2, start=1)
        await until(lambda: any(r.status == 422 for r in witness_status(h).refusals),
                    lambda: witness_status(h))  # fmt: skip
        # What the installer sees: einblick status, through the control socket.
        code, text, err = await einblick("status", "--config", str(h.gateway.config.source))
        assert code == 0, err
        assert "witnesses (countersign the checkpoints):" in text
        assert "REFUSED baeckerei-schmidt (HTTP 422)" in text
        assert "✗ witness verband refused the log of baeckerei-schmidt: " in overview_text(h, "en")
        assert 'einblick_witness_refused_logs{witness="verband"} 1' in render_metrics(
            h.gateway.status()
        )
        assert not caught_up(h)
    # The witness kept the signed fork as evidence and still holds the honest size.
    state = WitnessState(witness.directory / "witness.db")
    try:
        held = state.latest(origin)
        assert held is not None and held.size == cosigned_size
        evidence = state.refusals(origin)
        assert [r.status for r in evidence] == [422] * len(evidence) and evidence
        assert origin.encode() in evidence[0].request
    finally:
        state.close()


async def test_a_cosignature_by_another_key_is_never_stored(
    tmp_path: Path, witnesses: WitnessFactory
) -> None:
    witness = await witnesses()
    # The installer pasted a vkey of the same name but another key (a re-initialised witness).
    impostor = await witnesses("other", name=witness.verifier.name)
    configured = WitnessProcess(witness.directory, impostor.vkey, witness.url, witness.process, [])
    async with gateway_with(tmp_path, configured) as h:
        await send(h, 2)
        await h.cloud.wait_for(2)
        await follow_all(h, witness)
        await send(h, 1, start=2)
        await h.cloud.wait_for(3)
        # The refusal of the first round is already there; wait for a round that offered the
        # newest checkpoint (the third entry's), so what it says covers that checkpoint.
        await until(
            lambda: (
                "without a valid cosignature" in str(witness_status(h).last_error)
                and witness_status(h).entries_behind >= 3
            ),
            lambda: witness_status(h),
        )
        checkpoint = newest(h)
        assert checkpoint.size >= 3
        assert read(h, lambda conn: cosignature_lines(conn, checkpoint.id)) == []
        assert witness_status(h).cosigned == 0
        assert witness_status(h).entries_behind >= checkpoint.size


async def test_an_export_carries_the_witness_cosignature_of_its_own_checkpoint(
    tmp_path: Path, witnesses: WitnessFactory
) -> None:
    witness = await witnesses()
    # No periodic checkpoint during the test: the export's own signature is the one to cosign.
    slow = {"checkpoint_interval_s: 0.2": "checkpoint_interval_s: 60"}
    async with gateway_with(tmp_path, witness, edits=slow) as h:
        origin = h.gateway.writer.origin_of(CUSTOMER)
        witness.follow(origin, h.gateway.signer.note_signer(origin).verifier.vkey)
        await send(h, 5)
        await h.cloud.wait_for(5)
        assert customer_checkpoint(h) is None
        # An export signs first and lets the witness cosign that checkpoint; a stranger's
        # verifier then finds every entry covered by a checkpoint the witness countersigned.
        pub = tmp_path / "box.pub"
        pub.write_text(h.gateway.signer.public.pem())
        bundle = tmp_path / "export.bundle"
        config = str(h.gateway.config.source)
        code, _, err = await einblick(
            "export", "--config", config, "--customer", CUSTOMER, "--out", str(bundle)
        )
        assert code == 0, err
        policy = ["--witness", witness.vkey, "--witnesses-required", "1"]
        code, out, err = await einblick("verify", str(bundle), "--key", str(pub), *policy)
        assert code == 0, out + err
        # The same bundle against a witness that never cosigned it: not covered, exit 2.
        other = await witnesses("stranger", name="witness.example/stranger")
        policy = ["--witness", other.vkey, "--witnesses-required", "1"]
        code, out, err = await einblick("verify", str(bundle), "--key", str(pub), *policy)
        assert code == 2, out + err
        (line,) = read(h, lambda conn: cosignature_lines(conn, newest(h).id))
        assert line.rstrip("\n") in bundle.read_text()  # inside the checkpoint note, as JSON


DAIRY = (
    BAKERY.replace("baeckerei-schmidt", "molkerei-huber")
    .replace("Bäckerei Schmidt", "Molkerei Huber")
    .replace("oven-1", "tank-1")
    .replace("bakery/", "dairy/")
)


async def test_one_log_that_cannot_be_proven_does_not_hold_up_the_others(
    tmp_path: Path, witnesses: WitnessFactory
) -> None:
    witness = await witnesses()
    entry = (
        f"einblick_config: 1\nwitnesses:\n  - name: verband\n    url: {witness.url}\n"
        f"    vkey: {witness.vkey}\n    retry_max_s: 1\n"
    )
    async with running_gateway(
        tmp_path,
        {"bakery.yaml": BAKERY, "dairy.yaml": DAIRY},
        [*DEVICES, ("molkerei-huber", "tank-1", "Tank 1")],
        config_edits={"einblick_config: 1\n": entry},
    ) as h:
        tank = await h.device("molkerei-huber", "tank-1")
        await send(h, 3)
        await tank.publish("dairy/tank-1/telemetry", b'{"temperature": 4}', 1)
        await h.cloud.wait_for(4)
        await until(
            lambda: {c.chain for c in read(h, latest_checkpoints)} >= {CUSTOMER, "molkerei-huber"},
            lambda: read(h, latest_checkpoints),
        )
        await follow_all(h, witness)
        await send(h, 1, start=3)
        await tank.publish("dairy/tank-1/telemetry", b'{"temperature": 5}', 1)
        await until(lambda: caught_up(h) and dairy_cosigned(h), lambda: witness_status(h))
        # The bakery's stored leaf hashes are damaged: no consistency proof can be made for it.
        conn = sqlite3.connect(h.gateway.config.database_path, timeout=30)
        with conn:
            conn.execute(
                "DELETE FROM entries WHERE idx = 0 AND chain_id ="
                " (SELECT id FROM chains WHERE name = ?)",
                (CUSTOMER,),
            )
        conn.close()
        await send(h, 1, start=4)
        await tank.publish("dairy/tank-1/telemetry", b'{"temperature": 6}', 1)
        await until(
            lambda: (
                "baeckerei-schmidt: " in str(witness_status(h).last_error) and dairy_cosigned(h)
            ),
            lambda: witness_status(h),
        )
        assert not caught_up(h)
        assert witness_status(h).reachable is True
        # The dairy's own view (the TUI as that customer) shows its log alone: nothing of the
        # bakery's trouble, name or size.
        source = LocalSource(
            h.gateway.config.database_path,
            customer="molkerei-huber",
            control_socket=h.gateway.config.control_socket,
        )
        await source.open()
        try:
            # The TUI asks the control socket with a 2 s timeout: a loaded machine may need two.
            async with asyncio.timeout(30):
                while (status := (await source.overview(datetime.now(UTC))).status) is None:
                    pass
        finally:
            await source.close()
        (seen,) = status.witnesses
        assert (seen.logs, seen.logs_cosigned, seen.entries_behind) == (1, 1, 0)
        assert seen.last_error is None and seen.refusals == []
        assert "baeckerei" not in seen.model_dump_json()
        await tank.close()


def dairy_cosigned(harness: Harness) -> bool:
    found = [c for c in read(harness, latest_checkpoints) if c.chain == "molkerei-huber"]
    return bool(found) and bool(read(harness, lambda conn: cosignature_lines(conn, found[0].id)))
