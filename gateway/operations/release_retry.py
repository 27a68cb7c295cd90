"""The release's retry: the old instance asks the broker to drop a customer's subscriptions
(step 3 of ``einblick handover``, gateway/operations/handover.py) until it confirms, within a
bound.

A broker busy with a cluster's failover or a large backlog can miss the time in which one
UNSUBACK is expected; refusing then would undo a move that goes through a few seconds later. So
the release asks again, with the project's jittered backoff, for ``RELEASE_RETRY_S``
(gateway/operations/handover_model.py), and only then refuses, saying what the broker did.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from gateway.backoff import Backoff
from gateway.messages.endpoint import MqttError, SubscriptionRefused
from gateway.messages.mqtt import MqttConnection
from gateway.operations.handover_model import HandoverError

__all__ = ["let_go"]

# The handover's logger by name: an installer following a move in the log sees every step.
log = logging.getLogger("gateway.operations.handover")


async def let_go(
    connection: Callable[[], MqttConnection | None],
    apply: Callable[[MqttConnection], Awaitable[None]],
    what: str,
    *,
    within: float,
) -> MqttConnection:
    """Apply the instance's subscription set (``apply`` on the open session ``connection()``
    gives, None while it is down), asking again with the project's jittered backoff while the
    broker does not confirm or the session is reconnecting, for ``within`` seconds; then a
    HandoverError that says what the broker did and what to do. Applying the set again is
    harmless: a filter subscribed twice is one subscription, one dropped twice is gone.

    Returns the session the broker confirmed on: after a reconnect it is not the one open when
    the release began, and only a fence on this one proves that every message it delivered
    before the UNSUBACK has arrived. Each attempt gets only the time left, so the release
    never runs past ``within`` while the command that asked for it has stopped waiting."""
    backoff = Backoff(0.5, 5.0)
    deadline = time.monotonic() + within
    attempts = 0
    problem = ""
    while True:
        attempts += 1
        session = connection()
        if session is None:
            problem = "the instance is not connected to the device broker"
        else:
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await apply(session)
                return session
            except SubscriptionRefused as exc:
                # The broker's answer, not a missed one: asking for a minute gets it again.
                raise HandoverError(
                    f"{what}: {exc}. Nothing moved and the customer stays on this instance. "
                    "Check the broker's ACL for this instance's user, then run the same "
                    "command again"
                ) from exc
            except MqttError as exc:
                problem = str(exc)
            except TimeoutError:
                # cut short by the bound: the broker's answer before this one says more
                problem = "no answer in the time left" + (f"; before: {problem}" if problem else "")
        left = deadline - time.monotonic()
        if left <= 0:
            raise HandoverError(
                f"{what}: the device broker did not confirm that this instance dropped the "
                f"customer's subscriptions, asked {attempts} times over {within:.0f} s (last: "
                f"{problem}). Nothing moved and the customer stays on this instance. Check "
                "that the broker is up and not overloaded (its log, einblick status), then run "
                "the same command again"
            )
        delay = min(backoff.next_delay(), left)
        log.warning("%s: %s; asking the broker again in %.1f s", what, problem, delay)
        await asyncio.sleep(delay)
