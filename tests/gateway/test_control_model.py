"""The control ops' models: what each request accepts, what each reply carries on the wire."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest
from pydantic import BaseModel, JsonValue, ValidationError

from gateway.operations import control_model as ops
from gateway.operations.control import ControlError, ControlServer, ask


def test_requests_refuse_unknown_fields_and_need_what_they_act_on() -> None:
    with pytest.raises(ValidationError, match="customer"):
        ops.ConsentRequest.model_validate({"grant": "g"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        ops.NoFields.model_validate({"verbose": True})
    with pytest.raises(ValidationError, match="Extra inputs"):
        ops.CustomerRequest.model_validate({"custmer": "c"})
    assert ops.ForgetRequest.model_validate({"customer": "c"}).by == ""  # refused by erasure


def test_a_reload_devices_reply_carries_device_only_when_asked() -> None:
    problem = {"customer": "c", "device": "d", "error": "overlaps"}
    plain = ops.ReloadDevicesReply.model_validate({"devices": 2, "not_admitted": [problem]})
    assert plain.model_dump(mode="json", exclude_unset=ops.RELOAD_DEVICES.sparse) == {
        "devices": 2,
        "not_admitted": [problem],
    }
    effect = {"state": "decided", "policy": "p.yaml", "version": "abc", "error": None}
    asked = ops.ReloadDevicesReply(devices=2, not_admitted=[], device=effect)  # type: ignore[arg-type]
    dumped = asked.model_dump(mode="json", exclude_unset=True)
    assert dumped["device"] == effect  # its null fields stay: the CLI reads them


def test_an_offline_erasure_says_its_retained_messages_wait() -> None:
    wire = {
        "erasure": 1,
        "entry_seq": 9,
        "content_erased": 3,
        "queued_erased": 0,
        "keys_destroyed": 1,
        "retained_cleared": 0,
        "notified": ["oven-maker"],
        "scrubbed": True,
    }
    online = ops.ForgetReply.model_validate(wire)
    assert not online.retained_pending
    assert online.model_dump(mode="json", exclude_unset=True) == wire  # the wire, unchanged
    offline = ops.ForgetReply.model_validate({**wire, "retained_pending": True})
    assert offline.retained_pending


def test_replies_ignore_fields_a_newer_gateway_adds() -> None:
    reply = ops.CheckpointReply.model_validate({"signed_at": 5.0, "chains": 3})
    assert reply == ops.CheckpointReply(signed_at=5.0)


def test_every_op_has_a_distinct_name_and_two_models() -> None:
    names = [op.name for op in ops.OPS]
    assert len(names) == len(set(names))
    for op in ops.OPS:
        assert op.request.model_config.get("extra") == "forbid", op.name


GRANT = {
    "id": "g",
    "recipient": "r",
    "recipient_name": "R",
    "purpose": {"en": "Billing"},
    "legal_basis": "contract",
    "consent": None,
    "withdrawn": False,
    "fields": ["kwh"],
    "devices": ["meter-1"],
}
RIGHT = {
    "action": "withdraw",
    "changed": True,
    "message": "done",
    "kind": "consent",
    "entry_seq": 4,
}


@pytest.mark.parametrize(
    ("model", "reply", "missing"),
    [
        *[(ops.ConsentReply, RIGHT, name) for name in ("changed", "entry_seq", "kind", "action")],
        *[(ops.GrantInfo, GRANT, name) for name in ("withdrawn", "fields", "devices")],
        (ops.GrantInfo, GRANT, "legal_basis"),
        (ops.CustomerPolicies, {"customer": "c", "grants": [GRANT]}, "grants"),
    ],
)
def test_a_reply_without_what_it_says_is_refused_not_read_as_a_default(
    model: type[BaseModel], reply: dict[str, object], missing: str
) -> None:
    """A reply without whether a right changed anything, which entry holds it, or what a grant
    sends from which devices would read as "already in force", "entry 0", "gets nothing from
    every device": refused instead."""
    model.model_validate(reply)  # whole: reads
    with pytest.raises(ValidationError, match=missing):
        model.model_validate({k: v for k, v in reply.items() if k != missing})


async def test_a_gateway_answering_a_right_without_changed_does_not_fit_this_version(
    tmp_path: Path,
) -> None:
    async def withdraw(fields: Mapping[str, JsonValue]) -> Mapping[str, JsonValue]:
        return {k: v for k, v in RIGHT.items() if k != "changed"}

    async def policies(fields: Mapping[str, JsonValue]) -> Mapping[str, JsonValue]:
        return {"customers": [{"customer": "c", "grants": [{"id": "g", "recipient": "r"}]}]}

    socket = tmp_path / "control.sock"
    server = ControlServer(socket, {"withdraw": withdraw, "policies": policies})
    await server.start()
    try:
        asked = ops.ConsentRequest(customer="c", grant="g", by="M. Berg")
        with pytest.raises(ControlError, match="does not fit this version of einblick"):
            await ask(socket, ops.WITHDRAW, asked)
        with pytest.raises(ControlError, match="does not fit this version of einblick"):
            await ask(socket, ops.POLICIES, ops.CustomerRequest(customer="c"))
    finally:
        await server.close()
