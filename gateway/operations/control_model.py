"""Every control operation's request and reply as typed models, with the op's name.

The control socket carries one JSON object per line each way (gateway/operations/control.py); the
gateway validates each request into its op's request model before a handler sees it, and the CLI
and the TUI read each reply back through the op's reply model. A misspelt or missing field is then
a clear refusal at the socket ("op 'withdraw': grant: Field required"), and a renamed reply field
a validation error in every reader instead of a ``KeyError`` in one of them.

Field names are the wire format: ``einblick``, the TUI and the customer portal send and read
exactly these, so they do not change. Requests refuse unknown fields (a typo must not be read as
"not given"); replies ignore fields they do not know (a newer gateway may add some).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, JsonValue, model_validator

from gateway.operations.reload import ReloadReport
from gateway.operations.status_model import DeviceProblem, Status
from policies.compiler import CompiledGrant
from policies.describe import grant_fields, what_is_sent
from policies.model import allowed_actions

__all__ = [
    "CHECKPOINT",
    "ERASURES",
    "FORGET",
    "GIVE",
    "LIFT",
    "OBJECT",
    "OPS",
    "POLICIES",
    "RELOAD",
    "RELOAD_DEVICES",
    "RESTRICT",
    "RIGHTS",
    "SNAPSHOT",
    "STATUS",
    "WITHDRAW",
    "Answer",
    "CheckpointReply",
    "ConsentReply",
    "ConsentRequest",
    "CustomerPolicies",
    "CustomerRequest",
    "DeviceEffectReply",
    "Envelope",
    "ErasureNoticeRecord",
    "ErasureRecord",
    "ErasuresReply",
    "ForgetReply",
    "ForgetRequest",
    "GrantInfo",
    "NoFields",
    "Op",
    "PendingCopyRecord",
    "PoliciesReply",
    "ReloadDevicesReply",
    "ReloadDevicesRequest",
    "SnapshotReply",
    "grant_info",
]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _Reply(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


# -- the line each way -----------------------------------------------------------------------------


def _split(data: object, name: str) -> object:
    """``{"name": x, ...rest}`` as ``{"name": x, "fields": rest}``: the wire keeps every field
    at the top level (clients already send and read it so), the model keeps them apart."""
    if not isinstance(data, dict):
        return data  # refused by the model: "Input should be a valid dictionary"
    apart: dict[object, object] = {"fields": {k: v for k, v in data.items() if k != name}}
    if name in data:
        apart[name] = data[name]  # absent stays absent: "op: Field required"
    return apart


class Envelope(BaseModel):
    """One request line as the socket reads it: the op's name and its fields, which the op's
    own request model validates (``control.bind``) once the op is known."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    op: str
    fields: dict[str, JsonValue]

    @model_validator(mode="before")
    @classmethod
    def _apart(cls, data: object) -> object:
        return _split(data, "op")


class Answer(BaseModel):
    """One reply line as the client reads it: ``ok``, the gateway's reason when not, and the
    op's reply fields (read by the op's reply model in ``control.ask``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ok: bool
    fields: dict[str, JsonValue]

    @model_validator(mode="before")
    @classmethod
    def _apart(cls, data: object) -> object:
        return _split(data, "ok")

    @property
    def error(self) -> str:
        """What the gateway said went wrong (only on a refusal)."""
        return str(self.fields.get("error"))


# -- requests --------------------------------------------------------------------------------------


class NoFields(_Request):
    """status, checkpoint, snapshot, reload: nothing to say but the op."""


class CustomerRequest(_Request):
    """policies, erasures: optionally only one customer's."""

    customer: str | None = None


class ConsentRequest(_Request):
    """withdraw, give, object, restrict, lift: one grant of one customer, and the person who
    acts (required: an empty name is refused by the consent book with its reason)."""

    customer: str
    grant: str
    by: str = ""


class ReloadDevicesRequest(_Request):
    """reload_devices; with ``customer`` and ``device``, also what the gateway now does with it."""

    customer: str | None = None
    device: str | None = None


class ForgetRequest(_Request):
    """forget: a customer's (or one device's) personal data, at whose request (required)."""

    customer: str
    device: str | None = None
    by: str = ""


# -- replies ---------------------------------------------------------------------------------------


class GrantInfo(_Reply):
    """One grant as "who gets what" shows it. What says what the recipient gets and whether it
    is held back is required: a reply without it would read as "gets nothing, from every
    device" or "in force", so it is refused as not fitting this version. Only the later
    additions (``held_by``, ``actions``, ``sends``) have defaults, so an older gateway's reply
    still reads; this gateway always sends every field."""

    id: str
    recipient: str
    recipient_name: str  # empty: not named, shown by its id
    purpose: dict[str, str]
    legal_basis: str
    consent: dict[str, JsonValue] | None
    withdrawn: bool  # held back by anything: a withdrawn consent, an objection, a restriction
    held_by: str | None = None  # "consent" | "objection" | "restriction"
    # Not in force by its own dates when the view was made, as the engine judges it
    # (``CompiledGrant.validity_reason``): "validity_expired", "validity_not_yet_valid",
    # "consent_expired", "consent_not_yet_valid"; None: in force. The recipient gets nothing.
    lapsed: str | None = None
    actions: list[str] = []  # what the customer may do on the grant's legal basis, intended first
    # What the grant sends and how, per language: policies.describe.what_is_sent, the same lines
    # ``policy describe`` writes (never a view's own summary of the field list).
    sends: dict[str, list[str]] = {}
    fields: list[str]
    devices: list[str]


def grant_info(
    grant: CompiledGrant,
    recipient_names: Mapping[str, str],
    *,
    now: datetime,
    withdrawn: bool = False,
    held_by: str | None = None,
) -> GrantInfo:
    """The one "who gets what" view of a compiled grant: the running gateway's ``policies`` op and
    the TUI reading policy files without a gateway both build it here, so they cannot disagree.
    ``now``: the time its validity and consent dates are judged at (the gateway's clock)."""
    lapsed = grant.validity_reason(now)
    return GrantInfo(
        id=grant.id,
        recipient=grant.recipient,
        recipient_name=recipient_names.get(grant.recipient, grant.recipient),
        purpose=dict(grant.purpose),
        legal_basis=str(grant.legal_basis),
        consent=grant.consent.model_dump(mode="json") if grant.consent else None,
        withdrawn=withdrawn,
        held_by=held_by,
        lapsed=None if lapsed is None else f"{lapsed.params['what']}_{lapsed.code}",
        actions=list(allowed_actions(grant.legal_basis)),
        fields=list(grant_fields(grant.spec)),
        sends={lang: what_is_sent(lang, grant) for lang in ("de", "en")},
        devices=list(grant.devices),
    )


class CustomerPolicies(_Reply):
    """A customer's running policy, or (no grants, ``error`` set) one whose file does not load.
    ``customer`` and ``grants`` are required (a reply without its grants would read as a policy
    that shares nothing); the rest has defaults, so an older gateway's reply still reads."""

    customer: str
    name: str = ""  # empty: not named, shown by the customer's id
    language: str = "de"
    version: str | None = None
    describe: dict[str, str] = {}
    grants: list[GrantInfo]
    error: str | None = None


class PoliciesReply(_Reply):
    customers: list[CustomerPolicies]


class ConsentReply(_Reply):
    """A right's answer (gateway/rights/consent.py ``RightAnswer``): the signed entry of the event
    in force and, only when this call wrote it, the signed receipt (``einblick receipt verify``)
    and the same event as a DPV JSON-LD record. What the event is and whether this call wrote
    it is required: a reply without it (``{"ok": true}``) would read as "already in force" with
    no entry and no receipt, so it is refused as not fitting this version."""

    action: str
    changed: bool  # False: already in force; nothing was written
    message: str = ""
    kind: str
    entry_seq: int
    by: str = ""
    at: str = ""
    receipt: dict[str, JsonValue] | None = None
    record: dict[str, JsonValue] | None = None


class DeviceEffectReply(_Reply):
    state: str  # decided, removed, not_admitted, no_tls_listener, policy_not_running, not_in_policy
    policy: str | None
    version: str | None
    error: str | None


class ReloadDevicesReply(_Reply):
    devices: int
    not_admitted: list[DeviceProblem]
    device: DeviceEffectReply | None = None  # only when the request named a device


class PendingCopyRecord(_Reply):
    """A copy an erasure did not reach: ``gateway.rights.erasure.PendingCopy``."""

    model_config = ConfigDict(frozen=True, extra="ignore", from_attributes=True)

    instance: str
    why: str


class ForgetReply(_Reply):
    """What an erasure did: read from ``gateway.rights.erasure.Forgotten``'s attributes."""

    model_config = ConfigDict(frozen=True, extra="ignore", from_attributes=True)

    erasure: int
    entry_seq: int
    content_erased: int
    queued_erased: int
    keys_destroyed: int
    retained_cleared: int
    notified: list[str]
    scrubbed: bool
    # Set only by an erasure on a stopped gateway's database: retained messages on its broker
    # are cleared when it runs again.
    retained_pending: bool = False
    # Copies of a handed-over customer's data on earlier instances, not erased yet: each goes
    # at that instance's clean-up (gateway/operations/old_copies.py).
    copies_pending: list[PendingCopyRecord] = []
    # Recipients sent something of the subject before and no longer configured here: they got
    # no notice (the installer has to tell them; the signed entry names them).
    not_notified: list[str] = []


class ErasureNoticeRecord(_Reply):
    notice: str
    recipient: str
    delivered: bool
    acknowledged_at: str | None


class ErasureRecord(_Reply):
    erasure: int
    customer: str
    device: str | None
    at: str | None
    requested_by: str | None  # None once the customer was forgotten (the name went with them)
    entry_seq: int | None
    content_erased: int
    queued_erased: int
    keys_destroyed: int
    retained_cleared: int
    notices: list[ErasureNoticeRecord]
    # Copies of the customer's data an earlier instance still keeps after a move, as of this
    # answer: while any is listed, the erasure is not complete (absent from an older gateway,
    # which kept no note of where a moved customer's copies are).
    copies_pending: list[PendingCopyRecord] = []


class ErasuresReply(_Reply):
    erasures: list[ErasureRecord]


class CheckpointReply(_Reply):
    signed_at: float


class SnapshotReply(_Reply):
    """The database copy as it stood at the signature: whoever asked moves it away."""

    path: str
    signed_at: float


# -- the ops ---------------------------------------------------------------------------------------

# Covariant: the ops' table holds every op as ``Op[BaseModel, BaseModel]``; an Op is read-only.
Q_co = TypeVar("Q_co", bound=BaseModel, covariant=True)
R_co = TypeVar("R_co", bound=BaseModel, covariant=True)


@dataclass(frozen=True)
class Op(Generic[Q_co, R_co]):
    """An op's name on the wire and its two models. ``sparse``: the reply carries only the
    fields that were set (a status part never measured, a device not asked about), as before."""

    name: str
    request: type[Q_co]
    reply: type[R_co]
    sparse: bool = False


STATUS = Op("status", NoFields, Status, sparse=True)
POLICIES = Op("policies", CustomerRequest, PoliciesReply)
WITHDRAW = Op("withdraw", ConsentRequest, ConsentReply)
GIVE = Op("give", ConsentRequest, ConsentReply)
OBJECT = Op("object", ConsentRequest, ConsentReply)
RESTRICT = Op("restrict", ConsentRequest, ConsentReply)
LIFT = Op("lift", ConsentRequest, ConsentReply)
RIGHTS = {op.name: op for op in (WITHDRAW, GIVE, OBJECT, RESTRICT, LIFT)}
RELOAD_DEVICES = Op("reload_devices", ReloadDevicesRequest, ReloadDevicesReply, sparse=True)
FORGET = Op("forget", ForgetRequest, ForgetReply)
ERASURES = Op("erasures", CustomerRequest, ErasuresReply)
CHECKPOINT = Op("checkpoint", NoFields, CheckpointReply)
SNAPSHOT = Op("snapshot", NoFields, SnapshotReply)
RELOAD = Op("reload", NoFields, ReloadReport)

OPS: tuple[Op[BaseModel, BaseModel], ...] = (
    STATUS,
    POLICIES,
    WITHDRAW,
    GIVE,
    OBJECT,
    RESTRICT,
    LIFT,
    RELOAD_DEVICES,
    FORGET,
    ERASURES,
    CHECKPOINT,
    SNAPSHOT,
    RELOAD,
)
