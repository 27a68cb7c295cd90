"""What a customer changes goes to the running gateway over its control socket: the portal holds
no key and never writes the log. The rights are the gateway's typed ops (``ops.RIGHTS``:
withdraw, give, object, restrict, lift); which of them a grant offers is the gateway's answer
(``GrantInfo.actions``, from the grant's legal basis and what holds it back), never decided here.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

from gateway.operations import control_model as ops
from gateway.operations.control import ask
from gateway.operations.control_model import (
    ConsentReply,
    ConsentRequest,
    CustomerRequest,
    GrantInfo,
)

__all__ = ["FRESH_S", "RIGHTS", "GrantsCache", "exercise", "grants"]

# The order the portal lists them in when a grant offers several.
RIGHTS: tuple[str, ...] = tuple(ops.RIGHTS)
FRESH_S = 1.0  # a customer's grants are asked of the gateway at most this often


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


@dataclass
class GrantsCache:
    """A customer's grants as the gateway last said, asked again after ``FRESH_S``.

    Twenty sessions of one customer each opening "who gets what" asked the gateway twenty times
    (each answer describes the customer's policy in two languages on the gateway's event loop,
    between the messages it forwards). Now one question a second per customer at most: sessions
    asking meanwhile wait for it and share its answer, an answer is kept ``FRESH_S``, and the
    portal's own actions drop the customer's answer so the next page shows their effect."""

    fresh_s: float = FRESH_S
    asked: int = 0  # questions put to the gateway (what the tests count)
    _answers: dict[str, tuple[float, list[GrantInfo]]] = field(default_factory=dict)
    _locks: dict[str, asyncio.Lock] = field(default_factory=dict)

    async def get(self, socket: Path, customer: str) -> list[GrantInfo]:
        lock = self._locks.setdefault(customer, asyncio.Lock())
        async with lock:
            kept = self._answers.get(customer)
            if kept is not None and time.monotonic() - kept[0] < self.fresh_s:
                return kept[1]
            self.asked += 1
            answer = await grants(socket, customer)  # an error is not kept: asked again
            self._answers[customer] = (time.monotonic(), answer)
            return answer

    def forget(self, customer: str) -> None:
        """Drop the customer's answer (they acted on a grant: the next page asks again)."""
        self._answers.pop(customer, None)
