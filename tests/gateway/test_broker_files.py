"""The files written for Mosquitto: owner-only, hashed passwords, a write-only ACL for devices."""

from __future__ import annotations

import base64
import hashlib
import stat
from pathlib import Path

import pytest

from gateway.devices.broker_files import (
    MosquittoSettings,
    device_rule,
    gateway_rule,
    hash_password,
    topic_filter,
    write_files,
    write_private,
)
from gateway.errors import BrokerError


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_password_hash_is_mosquittos_pbkdf2_format() -> None:
    salt = b"0123456789ab"
    hashed = hash_password("secret", salt=salt)
    _, seven, rounds, salt_b64, digest_b64 = hashed.split("$")
    assert (seven, rounds) == ("7", "101")
    assert base64.b64decode(salt_b64) == salt
    expected = hashlib.pbkdf2_hmac("sha512", b"secret", salt, 101, 64)
    assert base64.b64decode(digest_b64) == expected
    assert "secret" not in hashed
    assert hash_password("secret") != hash_password("secret")  # a fresh salt each time


def test_device_rule_writes_its_topics_and_reads_only_its_commands() -> None:
    assert topic_filter("owntracks/{user}/{device}") == "owntracks/+/+"
    rule = device_rule("acme.oven", None, ["bakery/oven/{stream}", "bakery/oven/{x}"], ["cmd/oven"])
    assert rule.write == ("bakery/oven/+",) and rule.read == ("cmd/oven",)
    assert rule.readwrite == ()
    assert gateway_rule("einblick-gateway", "h").readwrite == ("#",)
    # A fixed first level cannot reach another customer's namespace: nothing to deny.
    assert device_rule("acme.oven", None, ["bakery/oven/{x}"], others=["sued"]).deny == ()
    wild = device_rule("acme.shelly", None, ["{id}/events/rpc"], others=["sued", "events"])
    assert wild.deny == ("devices/events/#", "devices/sued/#")


def test_files_are_owner_only_and_say_who_may_do_what(tmp_path: Path) -> None:
    settings = MosquittoSettings(directory=tmp_path / "broker", port=1884)
    rules = [
        gateway_rule("einblick-gateway", "$7$gw"),
        device_rule("acme.oven", "$7$dev", ["bakery/oven/{stream}"]),
        device_rule("acme.cert", None, ["bakery/cert/{stream}"]),
    ]
    conf = settings.directory / "mosquitto.conf"
    write_files(settings, rules, conf, information=True, debug=False)
    passwd = (settings.directory / "passwd").read_text()
    assert passwd == "einblick-gateway:$7$gw\nacme.oven:$7$dev\n"  # no line for the certificate
    acl = (settings.directory / "acl").read_text()
    assert "user acme.oven\ntopic write bakery/oven/+\n" in acl
    assert "user einblick-gateway\ntopic readwrite #\n" in acl
    text = conf.read_text()
    assert "allow_anonymous false" in text and "use_username_as_clientid true" in text
    assert "log_type information" in text and "log_type debug" not in text
    assert "listener 1884 127.0.0.1" in text
    for path in (conf, settings.directory / "passwd", settings.directory / "acl"):
        assert _mode(path) == 0o600, path
    assert _mode(settings.directory) == 0o700


def test_a_tls_port_without_the_gateways_certificate_is_refused(tmp_path: Path) -> None:
    settings = MosquittoSettings(directory=tmp_path, port=1884, tls_port=8883)
    with pytest.raises(BrokerError, match="einblick init"):
        write_files(settings, [], tmp_path / "mosquitto.conf", information=False, debug=False)


def test_write_private_replaces_whole(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "secret"
    write_private(path, "one")
    write_private(path, "two")
    assert path.read_text() == "two" and _mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["secret"]  # no temporary file left
