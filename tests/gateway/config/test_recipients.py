"""A recipient's section: a name, an mqtt(s) URL and what follows from it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gateway.config.recipients import RecipientConfig


def recipient(url: str, **more: object) -> RecipientConfig:
    return RecipientConfig.model_validate(
        {"name": "oven-maker", "display_name": "Ofenbau Müller", "url": url, **more}
    )


@pytest.mark.parametrize(
    ("url", "host", "port", "tls"),
    [
        ("mqtt://cloud.example.com", "cloud.example.com", 1883, False),
        ("mqtts://cloud.example.com", "cloud.example.com", 8883, True),
        ("mqtts://cloud.example.com:9883", "cloud.example.com", 9883, True),
        ("mqtt://127.0.0.1:1884", "127.0.0.1", 1884, False),
    ],
)
def test_host_port_and_tls_come_from_the_url(url: str, host: str, port: int, tls: bool) -> None:
    r = recipient(url)
    assert (r.host, r.port, r.uses_tls) == (host, port, tls)


@pytest.mark.parametrize("url", ["http://cloud.example.com", "mqtt://", "cloud:1883", "ws://x:1"])
def test_an_url_that_is_not_mqtt_is_refused_naming_it(url: str) -> None:
    with pytest.raises(ValidationError, match="expected mqtt://host:port") as caught:
        recipient(url)
    assert repr(url) in str(caught.value)


def test_the_name_and_the_limits_are_checked() -> None:
    with pytest.raises(ValidationError, match="lower-case"):
        RecipientConfig.model_validate({"name": "Oven", "display_name": "x", "url": "mqtt://x"})
    with pytest.raises(ValidationError, match="keepalive_s"):
        recipient("mqtt://x", keepalive_s=1)
    with pytest.raises(ValidationError, match="qos"):
        recipient("mqtt://x", qos=2)


def test_certificates_are_verified_unless_switched_off() -> None:
    assert recipient("mqtts://x").tls.insecure_skip_verify is False
    assert recipient("mqtts://x", tls={"insecure_skip_verify": True}).tls.insecure_skip_verify
