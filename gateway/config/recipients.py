"""The recipients: where what a policy releases is sent (an MQTT broker each), and how the
gateway connects to them (TLS, credentials, queue behaviour)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from gateway.config.section import Section, check_name

__all__ = ["RecipientConfig", "TlsConfig"]


class TlsConfig(Section):
    ca_file: Path | None = None  # None: the system's trust store
    cert_file: Path | None = None  # client certificate, when the upstream wants one
    key_file: Path | None = None
    # Turning verification off is sometimes needed on a test bench; it is never the default.
    insecure_skip_verify: bool = False


class RecipientConfig(Section):
    name: str
    display_name: str
    url: str  # mqtt://host:port or mqtts://host:port
    username: str | None = None
    password_file: Path | None = None
    client_id: str | None = None
    tls: TlsConfig = TlsConfig()
    topic_prefix: str = ""  # prepended to every topic the policy's template produces
    qos: Literal[0, 1] = 1
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # What happens when this recipient's queue is at its quota; None: outbox.when_recipient_full.
    when_queue_full: Literal["withhold", "hold"] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError(f"expected mqtt://host:port or mqtts://host:port, found {value!r}")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"
