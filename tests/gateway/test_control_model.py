"""The control ops' models: what each request accepts, what each reply carries on the wire."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.operations import control_model as ops


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
