"""The customers' policies read from the policy files, for a TUI without a running gateway.

The gateway's ``policies`` answer is the truth while it runs; when it does not, the TUI shows
what the files say, compiled by the same code (``policies.compiler``), and a file that does not
load or compile is shown with its error instead of being left out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path

from gateway.operations import control_model as ops
from gateway.rights.consent_events import Right
from policies.compiler import compile_policy
from policies.errors import PolicyError
from policies.loader import load_policy
from policies.model import PolicyDocument
from tui.model import CustomerPolicy, GrantView, Names

__all__: list[str] = []


def _merge_names(base: Names, extra: Names) -> Names:
    return Names(
        devices={**extra.devices, **base.devices},
        recipients={**extra.recipients, **base.recipients},
        customers={**extra.customers, **base.customers},
    )


def _documents(policies_dir: Path) -> list[PolicyDocument | PolicyError]:
    """Every policy file's document, or why it does not load (shown in its place)."""
    docs: list[PolicyDocument | PolicyError] = []
    for path in sorted(policies_dir.glob("*.yaml")) + sorted(policies_dir.glob("*.yml")):
        try:
            docs.append(load_policy(path))
        except PolicyError as exc:
            docs.append(exc)
    return docs


def _names_from_files(policies_dir: Path) -> Names:
    devices: dict[str, str] = {}
    customers: dict[str, str] = {}
    for doc in _documents(policies_dir):
        if isinstance(doc, Exception):
            continue
        customers[doc.customer] = doc.name
        for device in doc.devices:
            devices[device.id] = device.name
    return Names(devices=devices, customers=customers)


def _policies_from_files(
    policies_dir: Path, names: Names, held: Mapping[tuple[str, str], Right] | None = None
) -> list[CustomerPolicy]:
    """Each customer's grants as the running gateway's ``policies`` op would show them, from the
    policy files; ``held``: the grants held back by a recorded action (withdrawn consent,
    objection, restriction) and by which right, read from the log."""
    held = held or {}
    now = datetime.now(UTC)  # no gateway: its validity and consent dates judged by this clock
    out: list[CustomerPolicy] = []
    for doc in _documents(policies_dir):
        if isinstance(doc, Exception):
            stem = str(getattr(doc, "path", "?"))
            out.append(CustomerPolicy(stem, stem, "de", None, {}, (), error=str(doc)))
            continue
        # The same builder as the running gateway's ``policies`` op (one truth), on the file's
        # own compilation; recipients not configured here are named by their id.
        recipients = {**{g.recipient: g.recipient for g in doc.grants}, **names.recipients}
        try:
            compiled = compile_policy(doc, recipients)
        except PolicyError as exc:
            out.append(CustomerPolicy(doc.customer, doc.name, "de", None, {}, (), error=str(exc)))
            continue
        grants = [
            GrantView.from_info(
                ops.grant_info(
                    g,
                    recipients,
                    now=now,
                    withdrawn=(doc.customer, g.id) in held,
                    held_by=held.get((doc.customer, g.id)),
                )
            )
            for g in compiled.grants
        ]
        out.append(
            CustomerPolicy(
                customer=doc.customer,
                name=doc.name,
                language=doc.language,
                version=doc._sha256,
                describe={},
                grants=tuple(grants),
            )
        )
    return out
