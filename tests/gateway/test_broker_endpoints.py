"""The gateway's connections to the device broker: its session and each helper its own user,
under the running configuration."""

from __future__ import annotations

from pathlib import Path

from gateway.cluster import ClusterConfig
from gateway.config import BrokerConfig
from gateway.messages.broker_endpoints import BrokerEndpoints, gateway_endpoint, helper_endpoint
from tests.gateway.edge import edge_config


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


def test_the_running_configuration_is_read_at_each_connect(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {})
    passwords = iter(["first", "rotated"])
    connected = [True]
    endpoints = BrokerEndpoints(lambda: config, lambda: next(passwords), lambda: connected[0])
    session = endpoints.device()
    assert (session.username, session.password) == (config.broker.gateway_username, "first")
    # A reload replaced the configuration: the next connect is a cluster member's, with the
    # password as it is now.
    config = config.model_copy(
        update={
            "broker": BrokerConfig(mode="external", client_id="edge-7"),
            "cluster": ClusterConfig.model_validate(
                {"instances": [{"name": config.instance, "customers": ["acme"]}]}
            ),
        }
    )
    helper = endpoints.helper("retained")
    assert helper.client_id == f"edge-7-{config.instance}-retained"
    assert helper.password == "rotated"


def test_no_erasure_connection_while_the_gateways_session_is_down(tmp_path: Path) -> None:
    config = edge_config(tmp_path, {})
    connected = [False]
    endpoints = BrokerEndpoints(lambda: config, lambda: "pw", lambda: connected[0])
    assert endpoints.erasure() is None
    connected[0] = True
    erasure = endpoints.erasure()
    assert erasure is not None
    assert erasure.username == f"{config.broker.gateway_username}-erasure"
