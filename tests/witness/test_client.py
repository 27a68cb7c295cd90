"""The gateway's add-checkpoint client: each HTTP answer read as the spec means it, bounded,
and every "try again later" (refused connection, timeout, 5xx, an answer that is not one) an
error that the submitter retries — against a real ``einblick witness serve`` and a small
aiohttp server on loopback that answers whatever a test needs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.devices.ports import free_port
from gateway.log.note import COSIGNATURE_TYPE, Checkpoint, NoteError, Signer, cosign, open_note
from gateway.witness.client import (
    MAX_ANSWER,
    Conflict,
    Cosigned,
    Refused,
    WitnessClient,
    WitnessUnreachable,
)
from gateway.witness.protocol import request_body
from tests.witness.conftest import WitnessFactory
from tests.witness.tinylog import TinyLog

ORIGIN = "einblick.test/box-1/baeckerei-schmidt"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@asynccontextmanager
async def answering(handler: Handler) -> AsyncIterator[tuple[str, list[tuple[str, bytes]]]]:
    """A loopback HTTP server answering every POST with ``handler``; yields its URL and the
    (path, body) of each request it received."""
    seen: list[tuple[str, bytes]] = []

    async def record(request: web.Request) -> web.StreamResponse:
        seen.append((request.path, await request.read()))
        return await handler(request)

    app = web.Application()
    app.router.add_post("/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/", seen
    finally:
        await runner.cleanup()


async def add(url: str, *, timeout_s: float = 10.0) -> object:
    log = TinyLog(ORIGIN)
    log.append(3)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as session:
        return await WitnessClient(session, url).add_checkpoint(0, [], log.checkpoint(3))


def answer(status: int, body: bytes = b"", content_type: str = "text/plain") -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        return web.Response(status=status, body=body, content_type=content_type)

    return handler


async def test_a_real_witness_cosigns_and_the_lines_come_back_verbatim(
    witnesses: WitnessFactory,
) -> None:
    witness = await witnesses()
    log = TinyLog(ORIGIN)
    log.append(5)
    witness.follow(ORIGIN, log.verifier.vkey)
    note = log.checkpoint(5)
    async with aiohttp.ClientSession() as session:
        client = WitnessClient(session, witness.url + "/")
        reply = await client.add_checkpoint(0, [], note)
        assert isinstance(reply, Cosigned)
        text = Checkpoint(ORIGIN, 5, log.root(5)).text
        opened = open_note(text + "\n" + reply.lines, [witness.verifier])
        assert opened.timestamps[0] is not None
        log.append(4)
        # The witness holds 5 now: "old 0" again teaches the size, a proof from it is cosigned.
        assert await client.add_checkpoint(0, [], log.checkpoint(9)) == Conflict(5)
        assert isinstance(
            await client.add_checkpoint(5, log.proof(5, 9), log.checkpoint(9)), Cosigned
        )
        unknown = TinyLog("einblick.test/box-1/someone-else")
        unknown.append(1)
        refused = await client.add_checkpoint(0, [], unknown.checkpoint(1))
        assert isinstance(refused, Refused) and refused.status == 404


async def test_the_request_goes_to_add_checkpoint_with_the_protocol_body() -> None:
    log = TinyLog(ORIGIN)
    log.append(9)
    async with answering(answer(200, b"")) as (url, seen), aiohttp.ClientSession() as session:
        await WitnessClient(session, url + "//").add_checkpoint(
            4, log.proof(4, 9), log.checkpoint(9)
        )
    assert seen == [("/add-checkpoint", request_body(4, log.proof(4, 9), log.checkpoint(9)))]


async def test_a_line_by_another_key_is_handed_back_not_trusted_here() -> None:
    # The client does not judge lines: the submitter keeps only those that verify against the
    # configured witness key (tests/witness/test_submitter.py::
    # test_a_cosignature_by_another_key_is_never_stored). Here: nothing is lost or rewritten.
    log = TinyLog(ORIGIN)
    log.append(3)
    other = Signer("witness.example/w1", Ed25519PrivateKey.generate(), COSIGNATURE_TYPE)
    text = Checkpoint(ORIGIN, 3, log.root(3)).text
    line = cosign(other, text, 1_700_000_000)
    async with answering(answer(200, line.encode())) as (url, _):
        reply = await add(url)
    assert reply == Cosigned(line)
    right = Signer("witness.example/w1", Ed25519PrivateKey.generate(), COSIGNATURE_TYPE)
    with pytest.raises(NoteError):
        open_note(text + "\n" + line, [right.verifier])


async def test_409_with_a_size_is_a_conflict() -> None:
    async with answering(answer(409, b"17\n", "text/x.tlog.size")) as (url, _):
        assert await add(url) == Conflict(17)


@pytest.mark.parametrize(
    ("body", "content_type"),
    [(b"17\n", "text/plain"), (b"seventeen\n", "text/x.tlog.size"), (b"17", "text/x.tlog.size")],
)
async def test_a_409_that_is_not_a_size_is_unreachable(body: bytes, content_type: str) -> None:
    async with answering(answer(409, body, content_type)) as (url, _):
        with pytest.raises(WitnessUnreachable, match="a 409 that is not a size"):
            await add(url)


@pytest.mark.parametrize("status", [400, 403, 404, 422])
async def test_a_refusal_keeps_its_status_and_a_bounded_reason(status: int) -> None:
    async with answering(answer(status, b"  why " + b"x" * 2000 + b"\n")) as (url, _):
        reply = await add(url)
    assert isinstance(reply, Refused) and reply.status == status
    assert reply.reason.startswith("why x") and len(reply.reason) == 500


@pytest.mark.parametrize("status", [500, 503, 401, 418, 201])
async def test_any_other_status_is_unreachable_naming_it(status: int) -> None:
    async with answering(answer(status, b"overloaded")) as (url, _):
        with pytest.raises(WitnessUnreachable, match=f"HTTP {status}: overloaded"):
            await add(url)


async def test_an_answer_above_the_bound_is_not_read_whole() -> None:
    async with answering(answer(200, b"x" * MAX_ANSWER)) as (url, _):
        assert await add(url) == Cosigned("x" * MAX_ANSWER)
    async with answering(answer(200, b"x" * (MAX_ANSWER + 1))) as (url, _):
        with pytest.raises(WitnessUnreachable, match=f"over {MAX_ANSWER} bytes"):
            await add(url)


async def test_a_refused_connection_is_unreachable_naming_the_endpoint() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(WitnessUnreachable, match=f"{url}/add-checkpoint: ClientConnectorError"):
        await add(url)


async def test_no_answer_in_time_is_unreachable() -> None:
    never = asyncio.Event()

    async def hang(request: web.Request) -> web.StreamResponse:
        await never.wait()  # released once the client has given up, so the server can stop
        return web.Response(status=200)

    async with answering(hang) as (url, _):
        try:
            with pytest.raises(WitnessUnreachable, match="TimeoutError: no answer in time"):
                await add(url, timeout_s=0.5)
        finally:
            never.set()
