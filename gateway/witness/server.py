"""The witness's HTTP service (c2sp.org/tlog-witness), on aiohttp.

    POST <prefix>/add-checkpoint            judge, persist, answer cosignature lines
    GET  <prefix>/<sha256(origin)>/checkpoint   the latest cosigned checkpoint (monitoring)

Requests are read up to :data:`protocol.MAX_BODY` bytes (aiohttp refuses a larger body with
413 before reading it) and need no authentication: the checkpoint's signature is the only
credential, as the spec says. Refusals answer in plain text saying why, for the log operator
who reads them; a 409's body is exactly the held size (text/x.tlog.size).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import ssl
from pathlib import Path

from aiohttp import web

from gateway.errors import ConfigError
from gateway.log.note import Signer, cosign
from gateway.witness.directory import WitnessDirectory
from gateway.witness.protocol import (
    MAX_BODY,
    SIZE_CONTENT_TYPE,
    ProtocolError,
    Verdict,
    parse_request,
)
from gateway.witness.state import WitnessState

__all__ = ["WitnessServer", "tls_context"]

log = logging.getLogger(__name__)


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(str(cert), f"cannot load the TLS certificate and key: {exc}") from exc
    return context


class WitnessServer:
    def __init__(
        self,
        directory: WitnessDirectory,
        *,
        prefix: str = "",
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.directory = directory
        self.signer: Signer = directory.signer()
        directory.followed()  # a broken logs file stops the start, not the first request
        self.state = WitnessState(directory.state_path)
        self._state_lock = asyncio.Lock()
        self.prefix = prefix.rstrip("/")
        self.ssl_context = ssl_context
        self.app = web.Application(client_max_size=MAX_BODY)
        self.app.router.add_post(f"{self.prefix}/add-checkpoint", self._add_checkpoint)
        self.app.router.add_get(f"{self.prefix}/{{origin_hash}}/checkpoint", self._checkpoint)
        self._runner: web.AppRunner | None = None
        self.port = 0

    async def start(self, host: str, port: int) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, ssl_context=self.ssl_context)
        await site.start()
        # Port 0 picks a free one; the runner knows which.
        self.port = int(self._runner.addresses[0][1]) if port == 0 else port

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        self.state.close()

    @property
    def url(self) -> str:
        return f"{'https' if self.ssl_context else 'http'}://{{host}}:{self.port}{self.prefix}"

    async def _add_checkpoint(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            parsed = parse_request(body)
        except ProtocolError as exc:
            return _refuse(Verdict(400, str(exc)))
        try:
            trusted = self.directory.followed().trusted
        except ConfigError as exc:
            # The operator's file is broken: refuse everything until it is fixed, and say so.
            log.error("%s", exc)
            return web.Response(status=503, text=f"the witness's logs file is unusable: {exc}\n")
        # The commit waits for the disk (synchronous=FULL): off the event loop, one at a time
        # on the one connection.
        async with self._state_lock:
            answer = await asyncio.to_thread(
                self.state.add_checkpoint,
                parsed,
                body,
                trusted,
                lambda text, stamp: cosign(self.signer, text, stamp),
            )
        verdict = answer.verdict
        if verdict.ok:
            assert verdict.checkpoint is not None
            log.info("cosigned %s at size %d", verdict.checkpoint.origin, verdict.checkpoint.size)
            return web.Response(status=200, text=answer.lines, content_type="text/plain")
        if verdict.evidence:
            log.warning("refused and kept as evidence (%d): %s", verdict.status, verdict.reason)
        else:
            log.info("refused (%d): %s", verdict.status, verdict.reason)
        return _refuse(verdict)

    async def _checkpoint(self, request: web.Request) -> web.Response:
        wanted = request.match_info["origin_hash"]
        async with self._state_lock:
            origins = self.state.origins()
            found = [o for o in origins if hashlib.sha256(o.encode()).hexdigest() == wanted]
            note = self.state.latest_note(found[0]) if found else None
        if note is not None:
            return web.Response(text=note, content_type="text/plain")
        return web.Response(status=404, text="this witness has cosigned no such log\n")


def _refuse(verdict: Verdict) -> web.Response:
    if verdict.status == 409:
        return web.Response(
            status=409, body=f"{verdict.latest_size}\n".encode(), content_type=SIZE_CONTENT_TYPE
        )
    return web.Response(
        status=verdict.status, text=verdict.reason + "\n", content_type="text/plain"
    )
