"""The control socket's typed boundary: requests are validated into their op's model before a
handler runs, replies are read back through the op's reply model. Real Unix sockets throughout."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from gateway.operations import control_model as ops
from gateway.operations.control import (
    BadRequest,
    ControlError,
    ControlServer,
    GatewayNotRunning,
    ask,
    bind,
    request,
)

RECEIPT = {"type": "consent_withdrawn", "signature": "abc"}


def _reply(seq: int) -> ops.ConsentReply:
    return ops.ConsentReply(
        action="withdraw",
        changed=True,
        message="consent withdrawn",
        kind="consent_withdrawn",
        entry_seq=seq,
        by="M. Berg",
        at="2026-12-03T10:00:00+00:00",
        receipt=RECEIPT,
    )


async def _serve(path: Path, calls: list[ops.ConsentRequest]) -> ControlServer:
    async def withdraw(fields: ops.ConsentRequest) -> ops.ConsentReply:
        calls.append(fields)
        return _reply(41 + len(calls))

    async def snapshot(fields: Mapping[str, Any]) -> Mapping[str, Any]:
        # An unbound handler with a reply of the wrong shape: what an incompatible gateway sends.
        return {"path": None, "signed_at": "soon"}

    server = ControlServer(path, {"withdraw": bind(ops.WITHDRAW, withdraw), "snapshot": snapshot})
    await server.start()
    return server


async def test_a_request_is_validated_into_its_model_and_the_reply_read_back(
    tmp_path: Path,
) -> None:
    calls: list[ops.ConsentRequest] = []
    server = await _serve(tmp_path / "control.sock", calls)
    try:
        fields = ops.ConsentRequest(customer="berg-partner", grant="demand-heating", by="M. Berg")
        reply = await ask(tmp_path / "control.sock", ops.WITHDRAW, fields)
    finally:
        await server.close()
    assert calls == [fields]
    assert reply == _reply(42)


async def test_a_missing_or_unknown_field_is_refused_before_the_handler_runs(
    tmp_path: Path,
) -> None:
    calls: list[ops.ConsentRequest] = []
    socket = tmp_path / "control.sock"
    server = await _serve(socket, calls)
    try:
        with pytest.raises(ControlError, match=r"op 'withdraw': grant: Field required"):
            await request(socket, "withdraw", customer="berg-partner")
        # A misspelt field is not read as "not given" (here: who acted).
        with pytest.raises(ControlError, match=r"op 'withdraw': bye: Extra inputs"):
            await request(socket, "withdraw", customer="c", grant="g", bye="M. Berg")
        with pytest.raises(ControlError, match=r"op 'withdraw': customer: Input should be"):
            await request(socket, "withdraw", customer=7, grant="g")
    finally:
        await server.close()
    assert calls == []


async def test_a_reply_that_does_not_fit_its_model_is_an_error_not_a_keyerror(
    tmp_path: Path,
) -> None:
    socket = tmp_path / "control.sock"
    server = await _serve(socket, [])
    try:
        raw = await request(socket, "snapshot")
        assert raw["path"] is None  # the wire carried it as sent
        with pytest.raises(ControlError, match=r"does not fit this version of einblick"):
            await ask(socket, ops.SNAPSHOT)
    finally:
        await server.close()


async def test_no_gateway_is_said_as_such(tmp_path: Path) -> None:
    with pytest.raises(GatewayNotRunning, match="the gateway is not running"):
        await ask(tmp_path / "absent.sock", ops.STATUS, timeout=2)


async def test_a_bad_request_names_every_problem_on_the_wire(tmp_path: Path) -> None:
    socket = tmp_path / "control.sock"
    server = await _serve(socket, [])
    try:
        reader, writer = await asyncio.open_unix_connection(str(socket))
        writer.write(orjson.dumps({"op": "withdraw", "by": 3}) + b"\n")
        await writer.drain()
        answer = orjson.loads(await reader.readline())
        writer.close()
        await writer.wait_closed()
    finally:
        await server.close()
    assert answer["ok"] is False
    for problem in ("customer: Field required", "grant: Field required", "by: Input should be"):
        assert problem in answer["error"]


def test_bad_request_is_a_control_error_with_the_op() -> None:
    with pytest.raises(ValidationError) as caught:
        ops.ConsentRequest.model_validate({})
    bad = BadRequest("give", caught.value)
    assert isinstance(bad, ControlError)
    assert bad.op == "give"
    assert str(bad).startswith("op 'give': customer: Field required")


def test_the_op_names_are_the_wire_names_the_clients_send() -> None:
    # Other programs (the TUI, the customer portal) call these names: renaming one breaks them.
    assert [op.name for op in ops.OPS] == [
        "status",
        "policies",
        "withdraw",
        "give",
        "object",
        "restrict",
        "lift",
        "reload_devices",
        "forget",
        "erasures",
        "checkpoint",
        "snapshot",
        "reload",
    ]


async def test_a_request_that_gets_no_answer_closes_its_socket(tmp_path: Path) -> None:
    """A gateway that never answers (busy, or killed mid-answer): the request times out and
    closes its connection at once, not when the garbage collector finds it."""
    path = tmp_path / "control.sock"
    hung_up = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()  # the request arrives ...
        await reader.read()  # ... and no answer goes back until the client hangs up
        hung_up.set()
        writer.close()

    server = await asyncio.start_unix_server(never_answer, path=str(path))
    try:
        with pytest.raises(ControlError, match="did not answer") as refused:
            await request(path, "status", timeout=0.3)
        # ``refused`` keeps the request's frames alive: only an explicit close hangs up.
        async with asyncio.timeout(5):
            await hung_up.wait()
        assert refused.value is not None
    finally:
        server.close()
        await server.wait_closed()


async def _raw(socket: Path, line: bytes) -> dict[str, Any]:
    reader, writer = await asyncio.open_unix_connection(str(socket))
    writer.write(line)
    await writer.drain()
    answer: dict[str, Any] = orjson.loads(await reader.readline())
    writer.close()
    await writer.wait_closed()
    return answer


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b"status\n", "Invalid JSON"),
        (b'["status"]\n', "request: Input should be an object"),
        (b'{"customer": "berg-partner"}\n', "op: Field required"),
        (b'{"op": 7}\n', "op: Input should be a valid string"),
    ],
)
async def test_a_malformed_request_line_is_refused_with_what_a_request_looks_like(
    tmp_path: Path, line: bytes, problem: str
) -> None:
    socket = tmp_path / "control.sock"
    calls: list[ops.ConsentRequest] = []
    server = await _serve(socket, calls)
    try:
        answer = await _raw(socket, line)
    finally:
        await server.close()
    assert answer["ok"] is False
    assert answer["error"].startswith("expected one line of JSON, an object with an 'op'")
    assert problem in answer["error"]
    assert calls == []


@pytest.mark.parametrize(
    ("reply", "problem"),
    [
        (b"HTTP/1.1 400 Bad Request\n", "Invalid JSON"),
        (b"[true]\n", "answer: Input should be an object"),
        (b'{"error": "no"}\n', "ok: Field required"),
    ],
)
async def test_an_answer_that_is_not_a_reply_is_a_control_error_not_a_traceback(
    tmp_path: Path, reply: bytes, problem: str
) -> None:
    """Something else listening on the socket path (or a gateway killed mid-line) answers with
    a line that is no reply: the installer reads what answered, not a JSONDecodeError."""
    path = tmp_path / "control.sock"

    async def other(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(reply)
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(other, path=str(path))
    try:
        with pytest.raises(ControlError, match="is not an einblick gateway") as refused:
            await request(path, "status", timeout=5)
    finally:
        server.close()
        await server.wait_closed()
    assert problem in str(refused.value)


async def test_a_refusal_carries_the_gateways_reason_and_a_reply_only_its_fields(
    tmp_path: Path,
) -> None:
    socket = tmp_path / "control.sock"
    server = await _serve(socket, [])
    try:
        with pytest.raises(
            ControlError, match=r"^unknown op 'withdraw_all' \(known: snapshot, withdraw\)$"
        ):
            await request(socket, "withdraw_all")
        raw = await request(socket, "snapshot")
    finally:
        await server.close()
    assert raw == {"path": None, "signed_at": "soon"}  # no "ok" among the reply's fields
