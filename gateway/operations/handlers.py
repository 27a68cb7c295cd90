"""The control socket's operations: each handler asks the one collaborator that owns the answer.

Op names and reply fields are what ``einblick`` and the TUI send and read (gateway/operations/
control.py carries them); a handler gets the narrow pieces it uses, never the gateway object.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.devices.access import DeviceAccess
from gateway.messages.admission import PolicyAdmission
from gateway.messages.store import Store
from gateway.operations.checkpoints import Checkpoints
from gateway.operations.control import Handler
from gateway.operations.reload_apply import ConfigReloader
from gateway.operations.status_model import Status
from gateway.rights import erasure
from gateway.rights.consent import ConsentBook
from gateway.rights.erasure import ErasureParts
from policies.describe import describe

__all__ = ["SNAPSHOT_GLOB", "ControlParts", "control_handlers"]

SNAPSHOT_GLOB = "backup-snapshot-*.db"  # see ``snapshot``; stale ones are removed at start

Request = Mapping[str, Any]
Reply = dict[str, Any]


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


def control_handlers(parts: ControlParts) -> dict[str, Handler]:
    """Every op by name, each bound to its parts."""
    return {
        "status": functools.partial(status, parts.status),
        "policies": functools.partial(policies, parts),
        "withdraw": functools.partial(consent, parts.consents, "withdraw"),
        "give": functools.partial(consent, parts.consents, "give"),
        "reload_devices": functools.partial(reload_devices, parts),
        "forget": functools.partial(forget, parts.erasing),
        "erasures": functools.partial(erasures, parts.store),
        "checkpoint": functools.partial(checkpoint, parts.checkpoints),
        "snapshot": functools.partial(snapshot, parts.checkpoints, parts.data_path),
        "reload": functools.partial(reload, parts.reloader),
    }


async def status(build: Callable[[], Status], request: Request) -> Reply:
    return build().to_json()


async def policies(parts: ControlParts, request: Request) -> Reply:
    """The running policies, described, with each grant and whether its consent is withdrawn;
    and the customers whose file does not load, with the error and no grants (none in force)."""
    names = parts.recipient_names()
    customers: list[dict[str, Any]] = []
    only = request.get("customer")
    for policy in parts.admission.engine.policies():
        if only and policy.customer != only:
            continue
        customers.append(
            {
                "customer": policy.customer,
                "name": policy.name,
                "language": policy.language,
                "version": policy.version,
                "describe": {lang: describe(policy, lang) for lang in ("de", "en")},
                "grants": [
                    {
                        "id": grant.id,
                        "recipient": grant.recipient,
                        "recipient_name": names.get(grant.recipient, grant.recipient),
                        "purpose": dict(grant.purpose),
                        "legal_basis": str(grant.legal_basis),
                        "consent": grant.consent.model_dump(mode="json") if grant.consent else None,
                        "withdrawn": parts.consents.is_withdrawn(policy.customer, grant.id),
                        "fields": list(grant.spec.fields),
                        "devices": list(grant.devices),
                    }
                    for grant in policy.grants
                ],
            }
        )
    # A running policy with a broken newer file shows the error too.
    files = parts.admission.policies.files.values()
    errors = {f.customer: f.error for f in files if f.error}
    for entry in customers:
        entry["error"] = errors.get(entry["customer"])
    for loaded in files:
        customer = loaded.customer
        if loaded.error is None or customer is None or parts.admission.running(customer):
            continue
        if only and customer != only:
            continue
        customers.append(
            {
                "customer": customer,
                "name": customer,
                "language": "de",
                "version": None,
                "describe": {},
                "grants": [],
                "error": loaded.error,
            }
        )
    return {"customers": customers}


async def consent(consents: ConsentBook, action: str, request: Request) -> Reply:
    return await consents.change(
        action,
        str(request.get("customer", "")),
        str(request.get("grant", "")),
        str(request.get("by") or "the customer"),
    )


async def reload_devices(parts: ControlParts, request: Request) -> Reply:
    """Re-read the registry; with ``customer`` and ``device``, what the gateway does with it now."""
    devices = parts.devices
    count = devices.reload_devices()
    await devices.revoke_sessions()
    not_admitted = [
        {"customer": c, "device": d, "error": e} for (c, d), e in sorted(devices.problems.items())
    ]
    answer: Reply = {"devices": count, "not_admitted": not_admitted}
    customer, device = request.get("customer"), request.get("device")
    if isinstance(customer, str) and isinstance(device, str):
        policy_error = next(
            (f.error for f in parts.admission.policies.files.values() if f.customer == customer),
            None,
        )
        effect = devices.effect(parts.admission.engine, customer, device, policy_error)
        answer["device"] = {
            "state": effect.state,
            "policy": effect.policy,
            "version": effect.version,
            "error": effect.error,
        }
    return answer


async def forget(erasing: ErasureParts, request: Request) -> Reply:
    device = request.get("device")
    return await erasure.forget(
        erasing,
        str(request.get("customer", "")),
        str(device) if device else None,
        str(request.get("by") or ""),
    )


async def erasures(store: Store, request: Request) -> Reply:
    customer = request.get("customer")
    found = await store.read(
        functools.partial(erasure.list_erasures, customer=str(customer) if customer else None)
    )
    return {"erasures": found}


async def checkpoint(checkpoints: Checkpoints, request: Request) -> Reply:
    """Sign every log now (before a backup or an export), so nothing is left uncovered."""
    await checkpoints.sign(force=True)
    return {"signed_at": checkpoints.last_signed}


async def snapshot(checkpoints: Checkpoints, data_path: Path, request: Request) -> Reply:
    """For a backup: sign every log and copy the database as it stood at that signature, so
    every entry in the copy is covered. The copy lies in the data directory (owner-only);
    whoever asked moves it away."""
    target = data_path / SNAPSHOT_GLOB.replace("*", secrets.token_hex(8))
    try:
        await checkpoints.sign(force=True, snapshot=target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return {"path": str(target), "signed_at": checkpoints.last_signed}


async def reload(reloader: ConfigReloader, request: Request) -> Reply:
    report = await reloader.reload()
    return report.model_dump(mode="json")
