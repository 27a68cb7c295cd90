"""The whole file as one model: the rules that span sections and the paths it resolves."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import ValidationError

from gateway.config.device_broker import PACKET_OVERHEAD
from gateway.config.document import Config
from gateway.errors import ConfigError
from gateway.log.note import COSIGNATURE_TYPE, Signer

RECIPIENT = {"name": "oven-maker", "display_name": "Ofenbau", "url": "mqtt://cloud:1883"}


def config(**fields: object) -> Config:
    return Config.model_validate({"einblick_config": 1, "instance": "edge-07", **fields})


def test_relative_paths_resolve_against_the_file_and_absolute_ones_stay(tmp_path: Path) -> None:
    c = config(source=tmp_path / "einblick.yaml", database="/srv/einblick/log.db")
    assert c.data_path == tmp_path / "data"
    assert c.database_path == Path("/srv/einblick/log.db")
    assert c.signing_key_path == tmp_path / "data" / "keys" / "signing.key"
    assert c.policies_path == tmp_path / "policies"
    assert (c.broker_dir, c.control_socket, c.portal_db) == (
        tmp_path / "data" / "broker",
        tmp_path / "data" / "control.sock",
        tmp_path / "data" / "portal.db",
    )


def test_recipients_are_unique_and_looked_up_by_name() -> None:
    with pytest.raises(ValidationError, match="recipient 'oven-maker' is defined twice"):
        config(recipients=[RECIPIENT, RECIPIENT])
    c = config(recipients=[RECIPIENT])
    assert c.recipient_names() == {"oven-maker": "Ofenbau"}
    assert c.recipient("oven-maker").port == 1883
    with pytest.raises(ConfigError, match=r"no recipient named 'cloud' \(configured: oven-maker\)"):
        c.recipient("cloud")


def test_a_witness_is_listed_once_by_name_and_by_key() -> None:
    key, other = (
        Signer("w.example/1", Ed25519PrivateKey.generate(), COSIGNATURE_TYPE).verifier.vkey
        for _ in range(2)
    )
    one = {"name": "verband", "url": "https://w.example", "vkey": key}
    with pytest.raises(ValidationError, match=r"the vkey .* is listed twice"):
        config(witnesses=[one, {**one, "name": "zweiter"}])
    with pytest.raises(ValidationError, match="the name 'verband' is listed twice"):
        config(witnesses=[one, {**one, "vkey": other}])


def test_a_cluster_member_runs_on_an_external_broker_and_is_named_in_the_cluster() -> None:
    cluster = {"instances": [{"name": "hall-a"}, {"name": "hall-b"}]}
    with pytest.raises(ValidationError, match=r"broker\.mode: external"):
        config(instance="hall-a", cluster=cluster)
    with pytest.raises(ValidationError, match="instance 'edge-07' is not one of"):
        config(broker={"mode": "external"}, cluster=cluster)
    member = config(instance="hall-a", broker={"mode": "external"}, cluster=cluster)
    owned = [c for c in ("bakery", "mueller", "weber", "meier") if member.owns(c)]
    assert 0 < len(owned) < 4  # the two instances split the customers
    assert config().owns("anyone")  # without a cluster, every customer is this box's


def test_the_broker_packet_size_never_falls_below_what_the_pipeline_inspects() -> None:
    c = config(pipeline={"max_payload_bytes": 1024 * 1024})
    assert c.broker_packet_bytes == 1024 * 1024 + PACKET_OVERHEAD
    smaller = config(broker={"limits": {"max_packet_bytes": 2048}})
    assert smaller.broker_packet_bytes == smaller.pipeline.max_payload_bytes + PACKET_OVERHEAD
    larger = config(broker={"limits": {"max_packet_bytes": 64 * 1024 * 1024}})
    assert larger.broker_packet_bytes == 64 * 1024 * 1024


def test_mosquitto_s_memory_limit_leaves_room_above_its_queue() -> None:
    limits = {"max_queued_bytes": 512 * 1024 * 1024, "memory_limit_bytes": 550 * 1024 * 1024}
    with pytest.raises(ValidationError, match="drop messages it has already acknowledged"):
        config(broker={"limits": limits})
    assert config(broker={"limits": {**limits, "memory_limit_bytes": 0}})  # 0: no limit


def test_the_instance_is_a_name() -> None:
    with pytest.raises(ValidationError, match="lower-case"):
        config(instance="Edge 07")
