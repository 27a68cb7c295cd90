"""Draining a hold: the last step of taking a customer over (``handover_take``,
gateway/operations/handover.py), once its log is adopted and its policy runs here.

The hold session (gateway/operations/holds.py) kept every message of the customer since its
SUBACK (``t0``). It is connected now and fenced, so its whole backlog is in the pipeline before
anything newer; then the instance's own session subscribes to the customer's filters (SUBACK at
``t2``), the hold drops them (UNSUBACK at ``t3``), and both sessions are fenced again: a message
published between ``t2`` and ``t3`` reaches both and is decided twice, none reaches neither.
What the hold delivered is counted, so the command can print how many messages waited.

The old instance drains the hold the same way when it refuses a release after its UNSUBSCRIBE
may have taken effect (gateway/operations/handover.py): the customer's messages published since
then reached only the hold, and the hold is ended after the refusal.

Every refusal leaves the hold as it was: its messages stay queued in the broker for the same
command run again.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from gateway.config import Config
from gateway.errors import GatewayError
from gateway.messages.broker_endpoints import gateway_endpoint
from gateway.messages.clock import elapsed
from gateway.messages.device_link import DeviceLink
from gateway.messages.endpoint import Endpoint, Inbound, MqttError
from gateway.messages.flood import FloodGuard
from gateway.messages.mqtt import MqttConnection
from gateway.messages.pipeline import Pipeline
from gateway.operations.fences import Fences
from gateway.operations.handover_model import HandoverError, ReleaseRequest
from gateway.operations.holds import Hold, discard_session, hold_session

__all__ = ["drain_hold", "held_in_full", "take_back"]

log = logging.getLogger("gateway.operations.handover")  # an installer follows a move in one log


async def drain_hold(
    hold: Hold,
    *,
    link: DeviceLink,
    fences: Fences,
    pipeline: Callable[[], Pipeline],
    flood: FloodGuard,
    skip: Callable[[Inbound], bool],
    endpoint: Endpoint,
    gap: float,
) -> int:
    """Hand ``hold``'s backlog to the pipeline, move the customer's filters from the hold to
    the instance's own session on ``link`` and wait until everything either delivered before
    that is committed; the number of messages the hold delivered. ``endpoint`` is the instance's
    own session's (the hold's is reached with its user under the hold's recorded client id: on
    the new instance its own hold, on the old one the new instance's, after a refused release);
    ``skip`` says which messages are acknowledged without a decision (a retained replay);
    ``gap``: for how long, by this instance's own clock, the hold alone may have received the
    customer's messages (credited to its devices' flood buckets, capped). The hold session
    itself is left to end."""
    what = f"handover of {hold.customer!r}"
    wanted = set(link.subscriptions.wanted())
    missing = sorted(set(hold.filters) - wanted)
    if missing:
        raise HandoverError(
            f"{what}: this instance would not subscribe to {', '.join(missing)}: the "
            "customer's policy does not run here (see einblick status). Its messages wait "
            "in the hold session meanwhile; fix the policy, then run the same command again"
        )
    connection = link.connection
    if connection is None or not link.connected:
        raise HandoverError(
            f"{what}: not connected to the device broker; the customer's messages wait in "
            "the hold session. Run the same command again when it is connected"
        )
    # the backlog arrives at once: the customer's devices sent it at their pace, it is no flood
    flood.credit_held(hold.customer, gap, elapsed())
    drained = 0

    def arrived(message: Inbound) -> None:
        nonlocal drained
        if fences.taken(message.topic) or skip(message):
            message.ack()
        else:
            drained += 1
            pipeline().receive(message)

    held = MqttConnection(
        hold_session(endpoint, hold),
        on_message=arrived,
        manual_ack=True,
        clean_session=False,
        max_inflight=1000,
    )
    try:
        await held.open()
        await fences.wait(held, what)  # the backlog is decided before new messages come
        await link.subscriptions.apply(connection)  # C's filters: SUBACK at t2
        for topic in hold.filters:
            await held.unsubscribe(topic)  # UNSUBACK at t3
        await fences.wait(held, what)
        # and on the instance's own session: a message of C published before t3 may still
        # be on its way there (reading paused while the pipeline works off the backlog),
        # and it must be counted
        await fences.wait(connection, what)
    except MqttError as exc:
        raise HandoverError(
            f"{what}: the device broker: {exc}; the customer's messages wait in the hold "
            "session. Run the same command again"
        ) from exc
    finally:
        await held.close()
    return drained


def held_in_full(customer: str, hold: Hold | None, filters: list[str]) -> None:
    """Before the old instance gives up ``filters`` (the customer's now): refused unless the
    new instance's hold (when the release names it) subscribed to each of them. A device or
    policy loaded since the hold was opened brings a filter it never held, and the messages on
    it after the UNSUBACK would reach no session."""
    missing = sorted(set(filters) - set(hold.filters)) if hold is not None else []
    if missing:
        raise HandoverError(
            f"handover of {customer!r}: the new instance's hold session does not hold "
            f"{', '.join(missing)} (a device or policy added since it was opened); nothing "
            "moved and the customer stays here. Run the same command again: the hold then "
            "subscribes to them too"
        )


async def take_back(
    request: ReleaseRequest,
    why: Exception,
    drain: Callable[[Hold], Awaitable[int]],
    endpoint: Endpoint,
    *,
    config: Config,
    filters: list[str],
) -> HandoverError:
    """On the old instance, a release of ``customer`` refused (``why``) after its
    UNSUBSCRIBE may have taken effect: the customer's messages published since then reached
    only the new instance's hold. ``drain`` it here (:func:`drain_hold` into this instance's
    pipeline: its own session, ``endpoint``'s, subscribes the customer again before the hold
    lets go, so there is no gap) and end it, so the new instance finds it gone; the refusal
    that says so. When that is not possible the hold stays, the new instance keeps it (it asks
    the broker), and the refusal says what to run. The customer's policy must run here again
    before this is called. Only the hold of the instance the release names (``to_origin``,
    another instance of the cluster), under the client id that instance gives it, holding
    exactly ``filters`` (the customer's here) is drained: the request's word is checked."""
    customer, hold = request.customer, request.hold
    what = f"handover of {customer!r}"
    kept = (
        f"{why}. The new instance's hold session keeps the customer's messages published "
        "meanwhile, which only it received; it is kept. Run the same command again to finish "
        "the move (the new instance then decides them)"
    )
    to, _, of = request.to_origin.partition("/")
    names = config.cluster.names if config.cluster is not None else []
    # the hold's client id as holds.hold_endpoint builds it on the instance named ``to``
    builds = gateway_endpoint(config.broker, "", to).client_id + f"-hold-{customer}"
    if (
        hold is None
        or hold.customer != customer
        or of != customer
        or to not in names
        or to == config.instance  # never this instance's own session
        or hold.client_id != builds
        or set(hold.filters) != set(filters)
    ):
        return HandoverError(f"{kept}; the release named no hold session of the customer")
    try:
        drained = await drain(hold)
        await discard_session(hold_session(endpoint, hold))
    except GatewayError as exc:
        log.error("%s: the hold session could not be drained here: %s", what, exc)
        return HandoverError(f"{kept}; draining it here failed: {exc}")
    log.warning("%s refused; %d messages of the hold decided here, the hold ended", what, drained)
    return HandoverError(
        f"{why}. The {drained} messages the new instance's hold session received meanwhile "
        "were decided here, and the hold is ended"
    )
