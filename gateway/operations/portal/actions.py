"""What a customer changes goes to the running gateway over its control socket: the portal holds
no key and never writes the log. One small function per action, so the object/restrict ops can
join ``withdraw`` without touching the pages.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict

from gateway.operations.control import request

__all__ = ["Grant", "Receipt", "grants", "withdraw"]


class Grant(BaseModel):
    """One of the customer's grants as the gateway's ``policies`` op states it."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str
    recipient: str
    recipient_name: str
    purpose: dict[str, str]
    legal_basis: str
    withdrawn: bool
    fields: list[str]
    sends: dict[str, list[str]] = {}  # policies.describe.what_is_sent, per language
    devices: list[str]
    consent: dict[str, object] | None = None


class Receipt(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    entry_seq: int
    receipt: dict[str, object]


async def grants(socket: Path, customer: str) -> list[Grant]:
    """The customer's grants in force, asked of the gateway for this customer only."""
    answer = await request(socket, "policies", timeout=5, customer=customer)
    found: list[Grant] = []
    for policy in answer.get("customers", []):
        if isinstance(policy, dict) and policy.get("customer") == customer:
            found += [Grant.model_validate(g) for g in policy.get("grants", [])]
    return found


async def withdraw(socket: Path, customer: str, grant: str, by: str) -> Receipt:
    """Withdraw ``customer``'s consent ``grant``; the gateway's signed receipt comes back."""
    answer = await request(socket, "withdraw", timeout=30, customer=customer, grant=grant, by=by)
    return Receipt.model_validate(answer)
