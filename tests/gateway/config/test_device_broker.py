"""The device broker's section: the gateway's own user can never be a device's, and the limits
stay within what Mosquitto accepts."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config.device_broker import DEVICE_USERNAME, BrokerConfig, BrokerLimits


def test_a_gateway_user_shaped_like_a_device_is_refused_in_managed_mode() -> None:
    # "<customer>.<device>" is what registering a device creates: that device would take over
    # the gateway's session.
    assert DEVICE_USERNAME.match("bakery.gateway")
    with pytest.raises(ValidationError, match="shape of a device username"):
        BrokerConfig(gateway_username="bakery.gateway")
    # An external broker's users are the installer's: no registration can claim them.
    assert BrokerConfig(mode="external", gateway_username="bakery.gateway")
    assert BrokerConfig().gateway_username == "einblick-gateway"


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("max_queued_messages", 999),
        ("max_inflight_messages", 65536),
        ("max_packet_bytes", 268_435_461),
        ("retained_sweep_s", 0),
    ],
)
def test_limits_outside_mosquitto_s_range_are_refused(key: str, value: float) -> None:
    with pytest.raises(ValidationError, match=key):
        BrokerLimits.model_validate({key: value})


def test_ports_are_ports() -> None:
    with pytest.raises(ValidationError, match="port"):
        BrokerConfig(port=0)
    with pytest.raises(ValidationError, match="tls_port"):
        BrokerConfig(tls_port=65536)
