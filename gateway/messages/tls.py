"""The TLS context of an MQTT link to a recipient's broker, with errors an installer can act on.

A missing or unreadable file is the installer's to fix, not a bug: the error names the file and
the configuration key (OpenSSL's own message names neither) instead of a traceback.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from gateway.errors import GatewayError

__all__ = ["TlsError", "TlsSettings", "ssl_context"]


class TlsError(GatewayError):
    """A CA file, certificate or key configured for a link cannot be used."""


@dataclass(frozen=True, slots=True)
class TlsSettings:
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    insecure_skip_verify: bool = False


def ssl_context(tls: TlsSettings, who: str) -> ssl.SSLContext:
    # A missing or unreadable file is the installer's to fix, not a bug: say which file it is
    # (OpenSSL's own message names none) instead of letting an OSError become a traceback.
    try:
        context = ssl.create_default_context(cafile=tls.ca_file)
    except OSError as exc:
        raise TlsError(
            f"{who}: cannot use the CA file {tls.ca_file}: {_reason(exc)}; "
            "expected a readable PEM file of the upstream's CA (tls.ca_file)"
        ) from exc
    if tls.cert_file:
        try:
            context.load_cert_chain(tls.cert_file, tls.key_file)
        except OSError as exc:
            raise TlsError(
                f"{who}: cannot use the client certificate {tls.cert_file} with key "
                f"{tls.key_file or tls.cert_file}: {_reason(exc)}; expected readable PEM files "
                "whose key matches the certificate (tls.cert_file, tls.key_file)"
            ) from exc
    if tls.insecure_skip_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)  # ssl.SSLError is an OSError too
