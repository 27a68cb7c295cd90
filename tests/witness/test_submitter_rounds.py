"""One submitter round offers many logs to one witness at a time, at most IN_FLIGHT at once:
a witness far away (each answer a network round trip) still cosigns hundreds of logs a second,
and no witness is sent more than IN_FLIGHT requests together. On a real database through the
gateway's Store, against a loopback witness that holds every answer until the test releases it."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.config import WitnessConfig
from gateway.log.keys import Signer as KeyFile
from gateway.log.note import COSIGNATURE_TYPE, Signer, cosign
from gateway.messages.store import Store
from gateway.witness.ledger import Ledger
from gateway.witness.protocol import parse_request
from gateway.witness.submitter import IN_FLIGHT, Submitter
from tests.log.conftest import Log, make_draft

LOGS = 200  # above what one-after-another rounds carried in a second


async def test_a_round_keeps_in_flight_requests_overlapping_and_bounded(tmp_path: Path) -> None:
    log = Log(tmp_path / "einblick.db", KeyFile.generate(tmp_path / "log.key"))
    for n in range(LOGS):
        log.write([make_draft(n, customer=f"kunde-{n:02d}")])
    store = Store(tmp_path / "einblick.db")
    await store.open()
    ledger = Ledger(
        lambda job: store.read(job, offload=True),
        lambda job: store.transaction(job, durable=False),
    )
    key = Signer("witness.example/w1", Ed25519PrivateKey.generate(), COSIGNATURE_TYPE)
    in_flight, peak, release = 0, 0, asyncio.Event()

    async def witness(request: web.Request) -> web.Response:
        nonlocal in_flight, peak
        parsed = parse_request(await request.read())
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            await release.wait()  # held: the round sees no answer until the test allows it
        finally:
            in_flight -= 1
        return web.Response(text=cosign(key, parsed.text, int(time.time())))

    app = web.Application()
    app.router.add_post("/add-checkpoint", witness)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    config = WitnessConfig(name="verband", url=url, vkey=key.verifier.vkey, timeout_s=2)
    submitter = Submitter(config, ledger)
    try:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(submitter.run(), name="witness-verband")
            async with asyncio.timeout(60):
                # A witness that answers nothing: every request the round may open at once is
                # open, held, until the client's timeout ends the round.
                await submitter.settle()
                held = peak
                assert submitter.status().reachable is False
                release.set()
                await submitter.settle()  # the retry: answered at once now
            task.cancel()  # the rounds under test are over; the group ends with it
        assert held == IN_FLIGHT  # overlapping, and never more than IN_FLIGHT
        status = submitter.status()
        assert (status.logs, status.logs_cosigned, status.last_error) == (LOGS, LOGS, None)
        assert status.reachable is True and status.entries_behind == 0
    finally:
        release.set()
        await runner.cleanup()
        await store.close()
        log.close()


async def test_a_size_that_keeps_moving_names_no_customer_in_their_view(tmp_path: Path) -> None:
    # A witness answering 409 with a new size each time ends the round as "unreachable"; what
    # one customer's view shows of that error must not name another customer's log.
    log = Log(tmp_path / "einblick.db", KeyFile.generate(tmp_path / "log.key"))
    log.write([make_draft(0, customer="molkerei-huber")])
    log.write([make_draft(1, customer="baeckerei-schmidt")])
    store = Store(tmp_path / "einblick.db")
    await store.open()
    ledger = Ledger(
        lambda job: store.read(job, offload=True),
        lambda job: store.transaction(job, durable=False),
    )
    key = Signer("witness.example/w1", Ed25519PrivateKey.generate(), COSIGNATURE_TYPE)
    sizes = itertools.cycle((1, 0))  # never above the logs' size of 1: never "cut back"

    async def moving(request: web.Request) -> web.Response:
        return web.Response(status=409, text=f"{next(sizes)}\n", content_type="text/x.tlog.size")

    app = web.Application()
    app.router.add_post("/add-checkpoint", moving)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    submitter = Submitter(WitnessConfig(name="verband", url=url, vkey=key.verifier.vkey), ledger)
    try:
        async with asyncio.TaskGroup() as group:
            task = group.create_task(submitter.run(), name="witness-verband")
            async with asyncio.timeout(60):
                await submitter.settle()
            task.cancel()
        status = submitter.status()
        assert status.reachable is False and "changed three times in one round" in (
            status.last_error or ""
        )
        for customer, other in (("baeckerei-schmidt", "molkerei"), ("molkerei-huber", "baeckerei")):
            view = status.for_log(customer)
            assert view.last_error is not None and other not in view.model_dump_json()
    finally:
        await runner.cleanup()
        await store.close()
        log.close()
