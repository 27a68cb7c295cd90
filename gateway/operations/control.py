"""The running gateway's control socket: how the CLI and the TUI ask it to act.

The gateway is the only writer of its database, so a consent withdrawn in the TUI or with
``einblick consent withdraw`` is a request to the running gateway, which applies it to the engine
(the next message is decided under it), records it as a signed log entry, and answers with the
receipt. A Unix socket beside the database, owner-only: whoever may read the database may ask.

Protocol: one JSON object per line each way. Request ``{"op": "...", ...}``; answer
``{"ok": true, ...}`` or ``{"ok": false, "error": "..."}``. The line itself is read into a model
each way (``Envelope`` at the socket, ``Answer`` at the client), so a line that is not JSON, not
an object or has no op is refused with what a request looks like, and an answer that is no reply
is a ControlError, never a decoding traceback. Each op's fields are typed in
``gateway.operations.control_model``: ``bind`` validates a request into its model before the
handler runs, ``ask`` reads the reply back through the op's reply model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TypeVar

import orjson
from pydantic import BaseModel, JsonValue, ValidationError

from gateway.errors import GatewayError
from gateway.operations.control_model import Answer, Envelope, Op

__all__ = [
    "BadRequest",
    "ControlError",
    "ControlServer",
    "GatewayNotRunning",
    "Handler",
    "ask",
    "bind",
    "problems",
    "request",
]

Q = TypeVar("Q", bound=BaseModel)
R = TypeVar("R", bound=BaseModel)

log = logging.getLogger(__name__)

# A request's fields (the op's name taken off) → the reply's fields, as the wire carries both.
Handler = Callable[[Mapping[str, JsonValue]], Awaitable[Mapping[str, JsonValue]]]
MAX_REQUEST = 64 * 1024


class ControlError(GatewayError):
    """The gateway is not running, or it refused the request."""


class GatewayNotRunning(ControlError):
    """No gateway listens on the control socket."""


def problems(exc: ValidationError, whole: str = "request") -> str:
    """Every problem pydantic found, each at its field: ``grant: Field required; by: …``;
    one with the document itself at ``whole``."""
    return "; ".join(
        f"{'.'.join(str(p) for p in e['loc']) or whole}: {e['msg']}" for e in exc.errors()
    )


class BadRequest(ControlError):
    """A request whose fields do not fit its op (missing, unknown, or of the wrong type)."""

    def __init__(self, op: str, exc: ValidationError) -> None:
        super().__init__(f"op {op!r}: {problems(exc)}")
        self.op = op


def bind(op: Op[Q, R], handle: Callable[[Q], Awaitable[R]]) -> Handler:
    """``handle`` as a socket handler: the request validated into ``op.request`` (BadRequest
    if it does not fit), the reply dumped as the wire carries it."""

    async def handler(raw: Mapping[str, JsonValue]) -> Mapping[str, JsonValue]:
        try:
            fields = op.request.model_validate(raw)
        except ValidationError as exc:
            raise BadRequest(op.name, exc) from exc
        reply = await handle(fields)
        return reply.model_dump(mode="json", exclude_unset=op.sparse)

    return handler


class ControlServer:
    def __init__(self, path: Path, handlers: Mapping[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # a stale socket from a crash
        # The umask makes the socket owner-only from the moment it exists (connecting needs
        # write permission: anyone who can may erase a customer); 0600 like every other file in
        # the data directory, since the x bit means nothing on a socket.
        old = os.umask(0o177)
        try:
            self._server = await asyncio.start_unix_server(
                self._serve, path=str(self.path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await reader.readline()
            answer = await self._answer(line)
            writer.write(orjson.dumps(answer) + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _answer(self, line: bytes) -> Mapping[str, JsonValue]:
        try:
            envelope = Envelope.model_validate_json(line)
        except ValidationError as exc:
            # The line itself does not fit (not JSON, not an object, no op): said as such, so a
            # hand-written request (``socat``) learns what a request looks like.
            return {
                "ok": False,
                "error": "expected one line of JSON, an object with an 'op' "
                f'(e.g. {{"op": "status"}}): {problems(exc)}',
            }
        handler = self.handlers.get(envelope.op)
        if handler is None:
            known = ", ".join(sorted(self.handlers))
            return {"ok": False, "error": f"unknown op {envelope.op!r} (known: {known})"}
        try:
            return {"ok": True, **(await handler(envelope.fields))}
        except GatewayError as exc:
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            log.exception("control request %r failed", envelope.op)
            return {"ok": False, "error": f"internal error: {type(exc).__name__}: {exc}"}


async def request(
    path: Path, op: str, timeout: float = 10.0, **fields: JsonValue
) -> dict[str, JsonValue]:
    """Ask the running gateway; the reply's fields as the wire carries them. ControlError if it
    is not running, says no, or answers with something that is not a reply."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_unix_connection(str(path), limit=16 * 1024 * 1024)
            # Closed on every path: a timeout, a caller's cancellation or a gateway killed
            # mid-answer would otherwise leave the socket open until the collector finds it.
            try:
                writer.write(orjson.dumps({"op": op, **fields}) + b"\n")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise GatewayNotRunning(
            f"the gateway is not running (no control socket at {path})"
        ) from exc
    except TimeoutError as exc:
        raise ControlError(f"the gateway did not answer within {timeout:.0f} s ({path})") from exc
    if not line:
        raise ControlError(f"the gateway closed the connection without answering {op!r} ({path})")
    try:
        answer = Answer.model_validate_json(line)
    except ValidationError as exc:
        raise ControlError(
            f"what answers on {path} is not an einblick gateway (its answer to {op!r} is not a "
            f"reply: {problems(exc, 'answer')})"
        ) from exc
    if not answer.ok:
        raise ControlError(answer.error)
    return answer.fields


async def ask(path: Path, op: Op[Q, R], fields: Q | None = None, *, timeout: float = 10.0) -> R:
    """Ask the running gateway ``op`` and read its reply through ``op.reply``; ControlError if
    the gateway is not running, says no, or answers with a reply that does not fit."""
    sent = {} if fields is None else fields.model_dump(mode="json", exclude_none=True)
    answer = await request(path, op.name, timeout, **sent)
    try:
        return op.reply.model_validate(answer)
    except ValidationError as exc:
        raise ControlError(
            f"the gateway's answer to {op.name!r} does not fit this version of einblick "
            f"(is an older gateway still running?): {exc.errors()[0]['msg']}"
        ) from exc
