"""The running forwarders, one per recipient: each one's task, the password it was started with,
and the topic prefix the pipeline reads; started, stopped and replaced one recipient at a time.

A configuration reload changes only the recipients whose settings or password file changed; the
others keep their connection and their task. A recipient removed from the configuration has its
queued rows recorded withheld (reason ``recipient_removed``), never silently dropped; a row its
stopped forwarder may have delivered (published, unacknowledged) is recorded with reason
``recipient_removed_maybe_sent``, whose words do not say the recipient received nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from gateway.config import RecipientConfig
from gateway.messages.forwarder import Forwarder
from gateway.messages.outbox import Outbox, OutboxRow
from policies.decision import Reason

__all__ = ["MakeForwarder", "Upstreams", "Withhold"]

log = logging.getLogger(__name__)

# Builds one recipient's forwarder (its link, the send-time check, the erasure acknowledgements).
MakeForwarder = Callable[[RecipientConfig, str | None], Forwarder]
Withhold = Callable[[Sequence[tuple[OutboxRow, Reason]]], Awaitable[None]]


class Upstreams:
    """Forwarders by recipient name, with their tasks and the passwords they run with."""

    def __init__(self, outbox: Outbox, recipients: Sequence[RecipientConfig]) -> None:
        self.outbox = outbox
        self.forwarders: dict[str, Forwarder] = {}
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.passwords: dict[str, str | None] = {}
        # Read by the pipeline for every row (one dict, changed in place).
        self.topic_prefix: dict[str, str] = {r.name: r.topic_prefix for r in recipients}
        self._group: asyncio.TaskGroup | None = None
        # A stopped forwarder's word on which rows an earlier attempt may have delivered, kept
        # for ``remove`` (Forwarder.maybe_sent); replaced by the next forwarder of the name.
        self._stopped: dict[str, Callable[[Sequence[OutboxRow]], set[int]]] = {}

    def add(self, make: MakeForwarder, recipient: RecipientConfig, password: str | None) -> None:
        """Build ``recipient``'s forwarder and attach it to the outbox (started by ``start``)."""
        self.passwords[recipient.name] = password
        forwarder = make(recipient, password)
        self._stopped.pop(recipient.name, None)
        self.outbox.attach(recipient.name, forwarder.offer, forwarder.reread)
        self.forwarders[recipient.name] = forwarder
        self.topic_prefix[recipient.name] = recipient.topic_prefix
        if self._group is not None:
            self._run(recipient.name)

    def start(self, group: asyncio.TaskGroup) -> None:
        """Run every forwarder as a named task of ``group``; later ``add``s run at once."""
        self._group = group
        for name in self.forwarders:
            self._run(name)

    def _run(self, name: str) -> None:
        assert self._group is not None
        self.tasks[name] = self._group.create_task(
            self.forwarders[name].run(), name=f"forwarder-{name}"
        )

    def unchanged(
        self,
        name: str,
        before: RecipientConfig | None,
        after: RecipientConfig | None,
        passwords: Mapping[str, str | None],
    ) -> bool:
        """Whether ``name``'s forwarder can run on as it is: same settings, same password."""
        current = self.passwords.get(name)
        return after is not None and before == after and passwords.get(name, current) == current

    async def stop(self, name: str) -> None:
        """Stop ``name``'s forwarder; its acknowledged rows are deleted, the rest stay queued."""
        forwarder = self.forwarders.pop(name)
        self.outbox.detach(name)
        task = self.tasks.pop(name, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await forwarder.delete_delivered()  # acknowledged rows are not sent again
        self.passwords.pop(name, None)
        self._stopped[name] = forwarder.maybe_sent

    async def remove(self, name: str, withhold: Withhold) -> int:
        """Rows still queued for a recipient removed from the configuration: recorded withheld
        by ``withhold`` (reason ``recipient_removed``) and taken out of the outbox, in batches.
        Returns how many."""
        reason = Reason("recipient_removed")  # the entry names the recipient
        maybe = Reason("recipient_removed_maybe_sent")
        maybe_sent = self._stopped.get(name, _any_sent)
        total = 0
        while True:
            rows = await self.outbox.pending(name, after=0, limit=1000)
            if not rows:
                break
            tried = maybe_sent(rows)
            await withhold([(row, maybe if row.id in tried else reason) for row in rows])
            self.outbox.gone(name, ((r.customer, len(r.payload)) for r in rows))
            total += len(rows)
        self._stopped.pop(name, None)  # only now: a remove failing midway is asked again
        self.outbox.queues.forget(name)
        self.topic_prefix.pop(name, None)
        if total:
            log.warning(
                "recipient %s removed from the configuration: %d queued rows recorded withheld",
                name,
                total,
            )
        return total

    async def delete_delivered(self) -> None:
        """At shutdown: acknowledged rows of every forwarder are not sent again."""
        for forwarder in self.forwarders.values():
            await forwarder.delete_delivered()


def _any_sent(rows: Sequence[OutboxRow]) -> set[int]:
    """No forwarder of the recipient stopped in this process to say: any of ``rows`` may have
    been published before (by an earlier run)."""
    return {row.id for row in rows}
