"""The box's services to others over HTTP: the customers' portal it serves, and the witnesses it
asks to countersign its checkpoints."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from gateway.config.section import Section, check_name

__all__ = ["LOOPBACK", "PortalConfig", "WitnessConfig"]


LOOPBACK = ("127.0.0.1", "::1", "localhost")


class PortalConfig(Section):
    """The customers' portal (``einblick portal``, gateway/operations/portal): present means on.

    HTTPS with the box's listener certificate (``<data_dir>/tls/server.crt``, from the box's CA)
    unless ``cert_file``/``key_file`` name the installer's own; plain HTTP only on loopback
    (behind a reverse proxy that terminates TLS)."""

    host: str = "0.0.0.0"
    port: int = Field(default=8443, ge=1, le=65535)
    cert_file: Path | None = None
    key_file: Path | None = None
    plain_http: bool = False
    public_url: str | None = None  # the address in invitation links (default: https://host:port)
    session_minutes: int = Field(default=480, ge=5, le=60 * 24 * 30)
    invitation_hours: int = Field(default=72, ge=1, le=24 * 30)
    lock_after_failures: int = Field(default=5, ge=1, le=100)
    lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    max_live_sessions: int = Field(default=50, ge=1, le=1000)  # live log streams at once

    @model_validator(mode="after")
    def _tls_unless_loopback(self) -> PortalConfig:
        if self.plain_http and self.host not in LOOPBACK:
            raise ValueError(
                f"plain_http is allowed only on loopback ({', '.join(LOOPBACK)}), not on "
                f"{self.host!r}: customers' passwords would cross the network unencrypted"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (or neither: the box's CA)")
        return self


class WitnessConfig(Section):
    """A witness (c2sp.org/tlog-witness) that countersigns every checkpoint of this box's logs
    (gateway/witness/submitter.py). ``vkey`` is the line 'einblick witness init' printed."""

    name: str  # a label for status and metrics
    url: str  # the submission prefix: http(s)://host:port[/path], POSTs go to <url>/add-checkpoint
    vkey: str
    ca_file: Path | None = None  # HTTPS: the CA that signed the witness's certificate
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    # While it does not answer, asked again after 1 s, 2 s, 4 s … up to this.
    retry_max_s: float = Field(default=60.0, ge=1, le=3600)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"expected http(s)://host:port[/prefix], found {value!r}")
        return value

    @field_validator("vkey")
    @classmethod
    def _vkey(cls, value: str) -> str:
        from gateway.log.note import COSIGNATURE_TYPE, NoteError, Verifier  # noqa: PLC0415

        try:
            verifier = Verifier.parse(value)
        except NoteError as exc:
            raise ValueError(str(exc)) from exc
        if verifier.sig_type != COSIGNATURE_TYPE:
            raise ValueError(
                f"{verifier.name}: a witness key is a cosigner key (type 0x04, as 'einblick "
                f"witness init' prints it); this is type 0x{verifier.sig_type:02x}"
            )
        return value
