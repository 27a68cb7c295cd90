"""The gateway's connections to the device broker: its own persistent session and the helpers'.

Each helper (clearing retained messages at an erasure, sweeping retained messages) is its own
broker user, ``<gateway user>-<role>`` (gateway.devices.access.broker_users): the managed broker
makes every client id the username, so a helper under the gateway's user would replace the
gateway's persistent session.

``BrokerEndpoints`` builds them from the running configuration at each connect (a reload's
broker settings and a changed password apply at the next connection), so the composition root
hands each component one callable instead of the configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from gateway.config import BrokerConfig, Config
from gateway.messages.endpoint import Endpoint

__all__ = ["BrokerEndpoints", "gateway_endpoint", "helper_endpoint"]


def gateway_endpoint(
    broker: BrokerConfig, password: str, cluster_instance: str | None = None
) -> Endpoint:
    """The gateway's own session on the device broker. In a cluster (``cluster_instance``
    given), each instance's client id ends in its name: one configuration serves every instance,
    and each keeps its own persistent session instead of taking over the others'."""
    client_id = broker.gateway_username if broker.mode == "managed" else broker.client_id
    if cluster_instance is not None:
        client_id = f"{client_id}-{cluster_instance}"
    return Endpoint(
        host=broker.host,
        port=broker.port,
        # The managed broker replaces every client id by the username anyway; saying so here
        # keeps the session's name the same in the gateway's logs and in Mosquitto's.
        client_id=client_id,
        username=broker.gateway_username,
        password=password,
    )


def helper_endpoint(
    broker: BrokerConfig,
    password: str,
    role: Literal["erasure", "retained"],
    cluster_instance: str | None = None,
) -> Endpoint:
    """A second connection to the device broker as ``<gateway user>-<role>`` (an external
    broker knows only the gateway's user: the helper logs in as that, with its own client id)."""
    base = gateway_endpoint(broker, password, cluster_instance)
    return Endpoint(
        host=base.host,
        port=base.port,
        client_id=f"{base.client_id}-{role}",
        username=f"{base.username}-{role}" if broker.mode == "managed" else base.username,
        password=base.password,
        tls=base.tls,
    )


class BrokerEndpoints:
    """The gateway's connections to the device broker under the running configuration."""

    def __init__(
        self,
        config: Callable[[], Config],
        password: Callable[[], str],
        connected: Callable[[], bool],
    ) -> None:
        self._config = config
        self._password = password  # read at each connect: the file may have been rotated
        self._connected = connected  # whether the gateway's own session is up

    def device(self) -> Endpoint:
        """The gateway's own persistent session."""
        config = self._config()
        return gateway_endpoint(config.broker, self._password(), _cluster_instance(config))

    def helper(self, role: Literal["erasure", "retained"]) -> Endpoint:
        """A helper's connection, as its own broker user."""
        config = self._config()
        return helper_endpoint(config.broker, self._password(), role, _cluster_instance(config))

    def erasure(self) -> Endpoint | None:
        """For clearing retained messages at an erasure (its own user: under the gateway's, it
        would replace the gateway's session); None while the gateway's own session is down."""
        return self.helper("erasure") if self._connected() else None


def _cluster_instance(config: Config) -> str | None:
    return config.instance if config.cluster is not None else None
