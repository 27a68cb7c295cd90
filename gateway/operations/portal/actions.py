"""What a customer changes goes to the running gateway over its control socket: the portal holds
no key and never writes the log. The rights are the gateway's typed ops (``ops.RIGHTS``:
withdraw, give, object, restrict, lift); which of them a grant offers is the gateway's answer
(``GrantInfo.actions``, from the grant's legal basis and what holds it back), never decided here.
"""

from __future__ import annotations

from pathlib import Path

from gateway.operations import control_model as ops
from gateway.operations.control import ask
from gateway.operations.control_model import (
    ConsentReply,
    ConsentRequest,
    CustomerRequest,
    GrantInfo,
)

__all__ = ["RIGHTS", "exercise", "grants"]

# The order the portal lists them in when a grant offers several.
RIGHTS: tuple[str, ...] = tuple(ops.RIGHTS)


async def grants(socket: Path, customer: str) -> list[GrantInfo]:
    """The customer's grants in force, asked of the gateway for this customer only (a reply
    that names another customer is ignored: the scope does not rest on the gateway's filter)."""
    answer = await ask(socket, ops.POLICIES, CustomerRequest(customer=customer), timeout=5)
    return [g for p in answer.customers if p.customer == customer for g in p.grants]


async def exercise(socket: Path, action: str, customer: str, grant: str, by: str) -> ConsentReply:
    """Exercise right ``action`` on ``customer``'s ``grant``; the gateway answers with the signed
    receipt and DPV record of the entry it wrote, or (``changed`` False) the earlier entry
    already in force. KeyError: ``action`` is not a right."""
    op = ops.RIGHTS[action]
    return await ask(socket, op, ConsentRequest(customer=customer, grant=grant, by=by), timeout=30)
