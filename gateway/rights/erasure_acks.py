"""Recipients' acknowledgements of erasure notices: heard on each recipient's link, stored, and
counted in ``einblick status``.

The forwarder's link callback runs on the event loop and must not block, so a heard
acknowledgement goes into a queue; one task stores them in order.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable

from gateway.config import RecipientConfig
from gateway.errors import GatewayError
from gateway.messages.endpoint import Inbound
from gateway.messages.store import Store
from gateway.rights.erasure import notice_id_from_ack
from gateway.rights.erasure_book import ErasureBook, record_ack

__all__ = ["ErasureAcks"]

log = logging.getLogger(__name__)


class ErasureAcks:
    """The queue of heard acknowledgements and the task that stores them."""

    def __init__(self, store: Store, book: ErasureBook) -> None:
        self._store = store
        self._book = book
        self._heard: asyncio.Queue[tuple[str, str, int]] = asyncio.Queue()  # (.., .., µs)

    def listener(self, recipient: RecipientConfig) -> Callable[[Inbound], None]:
        """The callback for messages on ``recipient``'s link."""
        return functools.partial(self.heard, recipient)

    def heard(self, recipient: RecipientConfig, message: Inbound) -> None:
        """A message on a recipient's link: an erasure acknowledgement, or ignored."""
        notice = notice_id_from_ack(recipient.topic_prefix, message.topic)
        if notice is None or not message.payload:  # an empty payload clears a retained ack
            return
        self._heard.put_nowait((recipient.name, notice, time.time_ns() // 1000))

    async def run(self) -> None:
        while True:
            recipient, notice, at = await self._heard.get()
            try:
                known = await self._store.transaction(
                    functools.partial(record_ack, recipient=recipient, notice=notice, at=at)
                )
            except GatewayError as exc:
                log.error(
                    "erasure acknowledgement %s from %s not stored: %s", notice, recipient, exc
                )
                continue
            if known:
                self._book.acknowledged(notice)
                log.info("erasure notice %s acknowledged by %s", notice, recipient)
            else:
                log.warning("%s acknowledged an unknown erasure notice %s", recipient, notice)
