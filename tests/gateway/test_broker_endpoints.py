"""The gateway's connections to the device broker: its session and each helper its own user."""

from __future__ import annotations

from gateway.config import BrokerConfig
from gateway.messages.broker_endpoints import gateway_endpoint, helper_endpoint


def test_managed_the_session_is_the_gateway_user_and_each_helper_its_own_user() -> None:
    broker = BrokerConfig(port=18830, gateway_username="box-gw", client_id="ignored")
    session = gateway_endpoint(broker, "s3cret")
    assert (session.host, session.port) == ("127.0.0.1", 18830)
    # The managed broker makes every client id the username: said so, so logs agree.
    assert (session.client_id, session.username, session.password) == ("box-gw", "box-gw", "s3cret")
    helper = helper_endpoint(broker, "s3cret", "erasure")
    assert (helper.client_id, helper.username) == ("box-gw-erasure", "box-gw-erasure")
    assert helper_endpoint(broker, "s3cret", "retained").username == "box-gw-retained"


def test_external_the_helpers_log_in_as_the_gateway_with_their_own_client_ids() -> None:
    broker = BrokerConfig(mode="external", host="10.0.0.5", client_id="edge-7")
    session = gateway_endpoint(broker, "pw")
    assert (session.host, session.client_id, session.username) == (
        "10.0.0.5",
        "edge-7",
        "einblick-gateway",
    )
    helper = helper_endpoint(broker, "pw", "retained")
    assert (helper.client_id, helper.username, helper.password) == (
        "edge-7-retained",
        "einblick-gateway",
        "pw",
    )
