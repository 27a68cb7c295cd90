"""What the device link subscribes to: everything on a box of its own, only its customers' topics
in a cluster.

A lone gateway subscribes to ``#``: every message, also on a topic nobody declared, is decided
and recorded (withheld, "unknown device"). An instance of a cluster (gateway/cluster.py)
subscribes to the topics of the customers it owns and nothing else, so another instance's
customer never reaches its pipeline or its log: the registry namespace ``devices/<customer>/#``
of each owned customer plus the fixed firmware topics its policy declares.

A policy pattern whose first level is a wildcard (``{id}/events/rpc``) becomes a filter that
also matches other customers' namespaces (``devices/<other>/…``). Such a message of a customer
another instance owns is that instance's (its own filter brings it there): acknowledged here
without a trace (``elsewhere``), as a lone gateway never decides it under the wildcard's policy
either (policies/routes.py).

The session is persistent, and a persistent session keeps its subscriptions across restarts: a
filter this instance no longer wants (its customer was handed over, its policy changed) would go
on delivering. So the filters last subscribed are written down beside the database, and at every
connect the ones no longer wanted are unsubscribed before the link counts as up.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from pathlib import Path

import orjson

from gateway.config import Config
from gateway.devices.broker_files import topic_filter
from gateway.messages.mqtt import MqttConnection
from policies.topics import NAMESPACE, namespace_owner

__all__ = ["EVERYTHING", "Subscriptions", "cluster_subscriptions", "elsewhere", "owned_filters"]

log = logging.getLogger(__name__)

EVERYTHING = ("#",)


def elsewhere(config: Config, topic: str, aside: Callable[[str], bool]) -> bool:
    """Whether ``topic`` lies in the namespace of a customer another instance serves: listed
    for it or handed over to it, or with a policy file set aside here for it (``aside``:
    ``PolicySet.served_elsewhere``). A name no instance serves is decided here as anywhere (no
    device of any policy: withheld and recorded, "unknown device"), never dropped untraced."""
    if config.cluster is None:
        return False
    owner = namespace_owner(topic)
    if owner is None or config.owns(owner):
        return False
    listed = any(owner in member.customers for member in config.cluster.instances)
    return listed or owner in config.moves[0] or aside(owner)


def owned_filters(customers: list[str], declared: dict[tuple[str, str], list[str]]) -> list[str]:
    """The MQTT filters of ``customers``: their registry namespace and their declared topics
    (``declared``: (customer, device) -> topic patterns, as the admission reports them)."""
    wanted = {f"{NAMESPACE}/{customer}/#" for customer in customers}
    for (customer, _device), patterns in declared.items():
        if customer in customers:
            wanted.update(topic_filter(p) for p in patterns)
    return sorted(wanted)


class Subscriptions:
    """The filters the device session holds, kept equal to ``wanted()`` at every connect."""

    def __init__(self, wanted: Callable[[], list[str]], record: Path | None = None) -> None:
        self._wanted = wanted
        self._record = record  # None: a lone gateway, always '#', nothing to remember
        self.held: list[str] = self._read()

    def _read(self) -> list[str]:
        if self._record is None:
            return list(EVERYTHING)
        try:
            data = orjson.loads(self._record.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            # Not written yet, or unreadable: assume a lone gateway's '#' may still be held,
            # so it is taken away rather than left delivering every customer's messages.
            return list(EVERYTHING)
        if not isinstance(data, list) or not all(isinstance(f, str) for f in data):
            return list(EVERYTHING)
        return list(data)

    def _write(self) -> None:
        if self._record is None:
            return
        temporary = self._record.with_suffix(".tmp")
        try:
            temporary.write_bytes(orjson.dumps(self.held))
            temporary.replace(self._record)
        except OSError as exc:
            # A full disk must not end the session that still takes messages: the record only
            # tells a later start which filters to drop, and the broker keeps them meanwhile.
            log.warning(
                "device broker: cannot record this instance's subscriptions in %s (%s); "
                "filters no longer this instance's are dropped after a later successful write",
                self._record,
                exc,
            )

    def wanted(self) -> list[str]:
        """The filters the session should hold now."""
        return self._wanted()

    async def apply(self, link: MqttConnection) -> None:
        """Subscribe to what is wanted, then drop what no longer is: in this order, so a topic
        moving from one filter to another is never without a subscription in between."""
        wanted = self._wanted()
        for topic in wanted:
            await link.subscribe(topic, 1)
        for stale in sorted(set(self.held) - set(wanted)):
            await link.unsubscribe(stale)
            log.info("device broker: unsubscribed %r, no longer this instance's", stale)
        self.held = wanted
        self._write()


def cluster_subscriptions(
    config: Config,
    customers: Callable[[], list[str]],
    declared: Callable[[], dict[tuple[str, str], list[str]]],
    excluded: Callable[[], Collection[str]] = frozenset,
) -> Subscriptions | None:
    """An instance's subscription set: None (everything) without a cluster; else the topics of
    the customers whose policies it runs and of those listed for it (a listed customer without a
    policy yet still has its messages recorded as withheld, not left to nobody). ``excluded``:
    customers being handed over (gateway/operations/handover.py), whose messages a hold
    session on another instance takes from now on."""
    cluster = config.cluster
    if cluster is None:
        return None
    listed = [c for m in cluster.instances if m.name == config.instance for c in m.customers]

    def wanted() -> list[str]:
        # a listed customer this instance handed over is no longer its (gateway/log/moves.py)
        kept = [c for c in listed if config.owns(c)]
        return owned_filters(sorted({*customers(), *kept} - set(excluded())), declared())

    return Subscriptions(wanted, record=config.data_path / "subscriptions.json")
