"""The control socket's operations: each handler asks the one collaborator that owns the answer.

Op names and reply fields are what ``einblick`` and the TUI send and read (gateway/operations/
control.py carries them); a handler gets the narrow pieces it uses, never the gateway object.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gateway.devices.access import DeviceAccess
from gateway.messages.admission import PolicyAdmission
from gateway.messages.store import Store
from gateway.operations import control_model as ops
from gateway.operations.backup_snapshots import new_snapshot_path
from gateway.operations.checkpoints import Checkpoints
from gateway.operations.control import Handler, bind
from gateway.operations.control_model import (
    CheckpointReply,
    ConsentReply,
    ConsentRequest,
    CustomerPolicies,
    CustomerRequest,
    DeviceEffectReply,
    ErasureRecord,
    ErasuresReply,
    ForgetReply,
    ForgetRequest,
    NoFields,
    PoliciesReply,
    ReloadDevicesReply,
    ReloadDevicesRequest,
    SnapshotReply,
    grant_info,
)
from gateway.operations.reload import ReloadReport
from gateway.operations.reload_apply import ConfigReloader
from gateway.operations.status_model import DeviceProblem, Status
from gateway.rights import erasure_book, forgetting
from gateway.rights.consent import ConsentBook
from gateway.rights.erasure import PendingCopy
from gateway.rights.forgetting import ErasureParts
from policies.describe import describe

__all__ = ["ControlParts", "control_handlers", "erasure_records"]


@dataclass(frozen=True)
class ControlParts:
    """What the control operations read and act on."""

    status: Callable[[], Status]
    recipient_names: Callable[[], dict[str, str]]
    admission: PolicyAdmission
    consents: ConsentBook
    devices: DeviceAccess
    erasing: ErasureParts
    store: Store
    checkpoints: Checkpoints
    reloader: ConfigReloader
    data_path: Path
    # The copies of a customer's data an earlier instance still keeps after a move, looked at
    # read-only (nothing asked): an answer about erasures says them as of now.
    held_copies: Callable[[str], Awaitable[Sequence[PendingCopy]]]
    # Waits until every witness answered for the newest checkpoints (or gave up for now), so an
    # export right after carries their cosignatures.
    witnesses_settle: Callable[[], Awaitable[None]]


def control_handlers(parts: ControlParts) -> dict[str, Handler]:
    """Every op by name, each bound to its parts and to its request and reply models."""
    handlers = {
        ops.STATUS.name: bind(ops.STATUS, functools.partial(status, parts.status)),
        ops.POLICIES.name: bind(ops.POLICIES, functools.partial(policies, parts)),
        # A customer's rights over a grant (gateway/rights/consent.py): the same ops for the
        # CLI, the TUI and the customer portal.
        **{
            name: bind(op, functools.partial(consent, parts.consents, name))
            for name, op in ops.RIGHTS.items()
        },
        ops.RELOAD_DEVICES.name: bind(ops.RELOAD_DEVICES, functools.partial(reload_devices, parts)),
        ops.FORGET.name: bind(ops.FORGET, functools.partial(forget, parts.erasing)),
        ops.ERASURES.name: bind(
            ops.ERASURES, functools.partial(erasures, parts.store, parts.held_copies)
        ),
        ops.CHECKPOINT.name: bind(ops.CHECKPOINT, functools.partial(checkpoint, parts)),
        ops.SNAPSHOT.name: bind(
            ops.SNAPSHOT, functools.partial(snapshot, parts.checkpoints, parts.data_path)
        ),
        ops.RELOAD.name: bind(ops.RELOAD, functools.partial(reload, parts.reloader)),
    }
    assert set(handlers) == {op.name for op in ops.OPS}, "an op without a handler"
    return handlers


async def status(build: Callable[[], Status], request: NoFields) -> Status:
    return build()


async def policies(parts: ControlParts, request: CustomerRequest) -> PoliciesReply:
    """The running policies, described, with each grant and whether its consent is withdrawn;
    and the customers whose file does not load, with the error and no grants (none in force)."""
    names = parts.recipient_names()
    only = request.customer
    # A running policy with a broken newer file shows the error too.
    files = list(parts.admission.policies.files.values())
    errors = {f.customer: f.error for f in files if f.error}
    now = parts.consents.now()  # what the engine judges validity and consent dates at
    customers = [
        CustomerPolicies(
            customer=policy.customer,
            name=policy.name,
            language=policy.language,
            version=policy.version,
            describe={lang: describe(policy, lang) for lang in ("de", "en")},
            grants=[
                grant_info(
                    grant,
                    names,
                    now=now,
                    withdrawn=parts.consents.is_withdrawn(policy.customer, grant.id),
                    held_by=parts.consents.held_by(policy.customer, grant.id),
                )
                for grant in policy.grants
            ],
            error=errors.get(policy.customer),
        )
        for policy in parts.admission.engine.policies()
        if not only or policy.customer == only
    ]
    for loaded in files:
        customer = loaded.customer
        if loaded.error is None or customer is None or parts.admission.running(customer):
            continue
        if only and customer != only:
            continue
        customers.append(
            CustomerPolicies(
                customer=customer,
                name=customer,
                language="de",
                version=None,
                describe={},
                grants=[],
                error=loaded.error,
            )
        )
    return PoliciesReply(customers=customers)


async def consent(consents: ConsentBook, action: str, request: ConsentRequest) -> ConsentReply:
    # An empty ``by`` is refused by the book: every action names the person who took it.
    answer = await consents.act(action, request.customer, request.grant, request.by)
    return ConsentReply.model_validate(answer.model_dump(mode="json"))


async def reload_devices(parts: ControlParts, request: ReloadDevicesRequest) -> ReloadDevicesReply:
    """Re-read the registry; with ``customer`` and ``device``, what the gateway does with it now."""
    devices = parts.devices
    count = devices.reload_devices()
    await devices.revoke_sessions()
    not_admitted = [
        DeviceProblem(customer=c, device=d, error=e)
        for (c, d), e in sorted(devices.problems.items())
    ]
    customer, device = request.customer, request.device
    if customer is None or device is None:
        return ReloadDevicesReply(devices=count, not_admitted=not_admitted)
    policy_error = next(
        (f.error for f in parts.admission.policies.files.values() if f.customer == customer),
        None,
    )
    effect = devices.effect(parts.admission.engine, customer, device, policy_error)
    return ReloadDevicesReply(
        devices=count,
        not_admitted=not_admitted,
        device=DeviceEffectReply(
            state=effect.state, policy=effect.policy, version=effect.version, error=effect.error
        ),
    )


async def forget(erasing: ErasureParts, request: ForgetRequest) -> ForgetReply:
    answer = await forgetting.forget(erasing, request.customer, request.device or None, request.by)
    return ForgetReply.model_validate(answer)


async def erasures(
    store: Store,
    held_copies: Callable[[str], Awaitable[Sequence[PendingCopy]]],
    request: CustomerRequest,
) -> ErasuresReply:
    found = await store.read(
        functools.partial(erasure_book.list_erasures, customer=request.customer or None)
    )
    return ErasuresReply(erasures=await erasure_records(found, held_copies))


async def erasure_records(
    rows: Sequence[erasure_book.ErasureRow],
    held_copies: Callable[[str], Awaitable[Sequence[PendingCopy]]],
) -> list[ErasureRecord]:
    """The book's rows as the ``erasures`` answer gives them, each with the copies of its
    customer's data an earlier instance still keeps, as of now (each customer looked at once):
    an erasure recorded "pending on instance A" is complete once A's copy is gone, not before."""
    held = {c: await _held_or_why(held_copies, c) for c in {row["customer"] for row in rows}}
    return [
        ErasureRecord.model_validate(
            {
                **row,
                "copies_pending": [
                    {"instance": p.instance, "why": p.why} for p in held[row["customer"]]
                ],
            }
        )
        for row in rows
    ]


async def _held_or_why(
    held_copies: Callable[[str], Awaitable[Sequence[PendingCopy]]], customer: str
) -> Sequence[PendingCopy]:
    # One customer whose old copy cannot be looked at (a directory not searchable, a file
    # system gone) is pending with why; it must not fail the answer about every other customer.
    try:
        return await held_copies(customer)
    except OSError as exc:
        why = f"whether an old copy is left cannot be looked at ({exc.strerror or exc})"
        return (PendingCopy(instance="(unknown)", why=why),)


async def checkpoint(parts: ControlParts, request: NoFields) -> CheckpointReply:
    """Sign every log now (before a backup or an export), so nothing is left uncovered, and let
    the witnesses cosign it, so an export carries their cosignatures too."""
    await parts.checkpoints.sign(force=True)
    await parts.witnesses_settle()
    return CheckpointReply(signed_at=parts.checkpoints.last_signed)


async def snapshot(checkpoints: Checkpoints, data_path: Path, request: NoFields) -> SnapshotReply:
    """For a backup: sign every log and copy the database as it stood at that signature, so
    every entry in the copy is covered. The copy lies in the data directory (owner-only);
    whoever asked moves it away."""
    target = new_snapshot_path(data_path)  # removed at the next start if left behind
    try:
        await checkpoints.sign(force=True, snapshot=target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return SnapshotReply(path=str(target), signed_at=checkpoints.last_signed)


async def reload(reloader: ConfigReloader, request: NoFields) -> ReloadReport:
    return await reloader.reload()
