"""The hold session: where the broker keeps a customer's messages while its log moves here.

A handover's first step (``einblick handover``, gateway/operations/handover.py) opens, on the
instance taking the customer over, a persistent QoS 1 session of its own (client id
``<the instance's client id>-hold-<customer>``) subscribed to the filters the old instance
holds for the customer (run again, to those it holds now as well). From its SUBACK on, the broker queues every message of the
customer for it, whether or not anyone is connected, so the old instance may stop taking the
customer's messages at any later moment without a gap. The session is left disconnected until
the log has moved; then it is drained through the pipeline and ended.

What the session holds is written down beside the database (``handover-<customer>.json``: the
client id, the filters, since when), so a restarted instance, or the same command run again,
finds and drains it: a hold nobody drains would leave the customer's messages in the broker,
and the broker drops what exceeds its per-client queue (Mosquitto's ``max_queued_messages``,
EMQX's ``max_mqueue_len``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.errors import GatewayError
from gateway.messages.endpoint import Endpoint
from gateway.messages.mqtt import MqttConnection

__all__ = [
    "Hold",
    "HoldError",
    "discard_session",
    "end_session",
    "hold_endpoint",
    "hold_path",
    "hold_session",
    "open_hold",
    "read_hold",
    "still_held",
]


class HoldError(GatewayError):
    """A hold session cannot be opened, found or ended; the message says what to do."""


class Hold(BaseModel):
    """A hold session as written beside the database."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer: str
    client_id: str
    filters: list[str]
    since: float  # unix time of the SUBACK: the broker holds the customer's messages from then


def hold_path(data_path: Path, customer: str) -> Path:
    return data_path / f"handover-{customer}.json"


def hold_endpoint(gateway: Endpoint, customer: str) -> Endpoint:
    """The hold's own session: the instance's user, a client id of its own (so it never takes
    over the instance's session, nor another customer's hold)."""
    return dataclasses.replace(gateway, client_id=f"{gateway.client_id}-hold-{customer}")


def hold_session(gateway: Endpoint, hold: Hold) -> Endpoint:
    """``hold``'s session as reached with ``gateway``'s user: under the client id recorded for
    it, which names the instance that opened it. The old instance reaches the new one's hold so
    (a refused release drains it there), so its broker user must be allowed that client id."""
    return dataclasses.replace(gateway, client_id=hold.client_id)


def read_hold(data_path: Path, customer: str) -> Hold | None:
    path = hold_path(data_path, customer)
    try:
        return Hold.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValidationError) as exc:
        why = exc.errors()[0]["msg"] if isinstance(exc, ValidationError) else str(exc)
        raise HoldError(
            f"{path}: the record of the hold session for {customer!r} cannot be read ({why}); "
            "the broker may still hold the customer's messages under client id "
            f"'…-hold-{customer}'. Restore the file from a backup, or ask support"
        ) from exc


def _write(data_path: Path, hold: Hold) -> None:
    path = hold_path(data_path, hold.customer)
    temporary = path.with_suffix(".tmp")
    temporary.write_bytes(hold.model_dump_json().encode())
    temporary.replace(path)


async def open_hold(data_path: Path, gateway: Endpoint, customer: str, filters: list[str]) -> Hold:
    """Subscribe the hold session to ``filters`` (again, if it exists: a re-run) and leave it
    disconnected, the broker queueing for it. An existing hold keeps its ``since`` and holds
    what it held and ``filters`` too (which may then be empty): a device registered since the
    hold was opened brings a filter the old instance gives up with the others at the release,
    and a hold without it would leave that device's messages to nobody."""
    known = read_hold(data_path, customer)
    if known is not None:
        filters = sorted(set(known.filters) | set(filters))
    if not filters:
        raise HoldError(
            f"no filters to hold {customer!r} under: the old instance named none, and this "
            "instance has no hold for the customer. Start the handover from the beginning"
        )
    endpoint = hold_endpoint(gateway, customer)
    # Nothing is taken from this session until the log has moved: a message it receives now
    # (a retained one, sent at the SUBSCRIBE) is left unacknowledged and comes back at the drain.
    link = MqttConnection(endpoint, manual_ack=True, clean_session=False, max_inflight=1000)
    try:
        await link.open()
        for topic in filters:
            await link.subscribe(topic, 1)
    except GatewayError as exc:
        raise HoldError(
            f"cannot open the hold session for {customer!r} on the device broker: {exc}; "
            "nothing has moved. Run the same command again when the broker answers"
        ) from exc
    finally:
        await link.close()
    if known is None:
        hold = Hold(
            customer=customer, client_id=endpoint.client_id, filters=filters, since=time.time()
        )
    else:
        hold = known.model_copy(update={"filters": filters})
    _write(data_path, hold)
    return hold


async def discard_session(endpoint: Endpoint) -> None:
    """End ``endpoint``'s session at the broker: a clean-session connect discards it and what
    it queued. Only once its messages are decided, or none are needed."""
    link = MqttConnection(endpoint, clean_session=True)
    try:
        await link.open()
    finally:
        await link.close()


async def end_session(data_path: Path, gateway: Endpoint, customer: str) -> None:
    """End the hold's session at the broker and forget the record. Only once its messages are
    decided, or none are needed."""
    await discard_session(hold_endpoint(gateway, customer))
    hold_path(data_path, customer).unlink(missing_ok=True)


async def still_held(gateway: Endpoint, customer: str) -> bool:
    """Whether the broker still keeps the hold's session, and with it maybe messages nobody
    else received: asked of the broker (CONNACK's session present), never taken on anyone's
    word. What it delivers to this short connection is not acknowledged, so it stays queued.
    A session this connect made (there was none) is discarded again at once."""
    endpoint = hold_endpoint(gateway, customer)
    link = MqttConnection(endpoint, manual_ack=True, clean_session=False)
    try:
        await link.open()
        present = link.session_present
    finally:
        await link.close()
    if not present:
        await discard_session(endpoint)
    return present
