"""The TUI's data (tui/model.py) read from the gateway's typed replies: every field of a
``policies`` and a rights answer arrives (the control socket's JSON, field by field), an older
gateway's reply (without the fields added since) reads through the same reply models and fills
in what a view needs, and names fall back to ids."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from gateway.operations.control_model import (
    ConsentReply,
    CustomerPolicies,
    PoliciesReply,
    grant_info,
)
from policies.compiler import compile_policy
from policies.examples import RECIPIENTS, example_path
from policies.loader import load_policy
from tests.gateway.test_control_model import GRANT
from tui.model import CustomerPolicy, GrantView, Names, RightResult

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)  # what grants' dates are judged at


def _wire(reply: PoliciesReply | ConsentReply) -> dict[str, object]:
    """What crosses the control socket."""
    return orjson.loads(reply.model_dump_json())  # type: ignore[no-any-return]


def test_a_policies_reply_arrives_field_by_field() -> None:
    policy = compile_policy(load_policy(example_path("vans")), RECIPIENTS)
    infos = [grant_info(g, RECIPIENTS, now=NOW) for g in policy.grants]
    infos[1] = infos[1].model_copy(update={"withdrawn": True, "held_by": "consent"})
    reply = PoliciesReply(
        customers=[
            CustomerPolicies(
                customer=policy.customer,
                name=policy.name,
                language=policy.language,
                version=policy.version,
                describe={"en": "Who gets what"},
                grants=infos,
                error=None,
            )
        ]
    )
    [shown] = [
        CustomerPolicy.from_reply(c) for c in PoliciesReply.model_validate(_wire(reply)).customers
    ]
    assert (shown.customer, shown.name, shown.version) == (
        policy.customer,
        policy.name,
        policy.version,
    )
    for info, grant in zip(infos, shown.grants, strict=True):
        assert grant.id == info.id and grant.recipient_name == info.recipient_name
        assert grant.fields == tuple(info.fields) and grant.devices == tuple(info.devices)
        assert grant.actions == tuple(info.actions) and grant.consent == info.consent
        assert grant.sends == {lang: tuple(lines) for lang, lines in info.sends.items()}
        assert (grant.withdrawn, grant.held_by) == (info.withdrawn, info.held_by)
        assert dict(grant.purpose) == info.purpose and grant.legal_basis == info.legal_basis
    assert shown.grants[1].withdrawn and shown.grants[1].held_by == "consent"


def test_a_partial_reply_fills_in_what_a_view_needs() -> None:
    """An older gateway's reply: no name, language or version of the policy, and no held_by,
    actions or sends of its grants (they came later)."""
    older_grant = GRANT | {"recipient_name": ""}  # not named: shown by its id
    older = {"customer": "acme", "grants": [older_grant]}
    policy = CustomerPolicy.from_reply(CustomerPolicies.model_validate(older))
    assert (policy.name, policy.language, policy.version, policy.error) == (
        "acme",
        "de",
        None,
        None,
    )
    [grant] = policy.grants
    assert grant == GrantView(
        id="g",
        recipient="r",
        recipient_name="r",
        purpose={"en": "Billing"},
        legal_basis="contract",
        consent=None,
        withdrawn=False,
        fields=("kwh",),
        devices=("meter-1",),
    )


def test_a_rights_answer_arrives_with_its_receipt() -> None:
    reply = ConsentReply(
        action="withdraw",
        changed=True,
        message="consent withdrawn",
        kind="consent",
        entry_seq=17,
        by="Anna",
        at="2026-05-01T00:00:00+00:00",
        receipt={"receipt": {"grant": "g"}, "signature": "x"},
    )
    result = RightResult.from_reply(ConsentReply.model_validate(_wire(reply)))
    assert (result.action, result.changed, result.entry_seq, result.by) == (
        "withdraw",
        True,
        17,
        "Anna",
    )
    assert result.receipt == {"receipt": {"grant": "g"}, "signature": "x"}


def test_names_fall_back_to_ids() -> None:
    names = Names(devices={"oven-1": "Backofen 1"}, customers={"b": "Bäckerei"})
    assert (names.device("oven-1"), names.device("oven-2"), names.device(None)) == (
        "Backofen 1",
        "oven-2",
        "",
    )
    assert (names.customer("b"), names.recipient("cloud")) == ("Bäckerei", "cloud")
