"""The gateway's own certificate authority: the TLS listener's certificate and device certificates.

``einblick init`` creates a CA that exists only on this box and signs two kinds of certificates:

    data/tls/ca.crt       the CA certificate: integrators copy it into devices to trust the box
    data/tls/ca.key       the CA's private key (owner-only; never leaves the box)
    data/tls/server.crt   Mosquitto's certificate for the TLS listener (SANs: localhost,
    data/tls/server.key   127.0.0.1, the listen address and every --hostname)
    data/tls/ca.crl       revoked device certificates (Mosquitto's ``crlfile``), signed by the CA
    data/tls/revoked.json serials of revoked device certificates, from which the CRL is rebuilt

``einblick device add --cert`` issues a client certificate whose common name is the device's
broker username (``customer.device``): with ``require_client_cert`` Mosquitto takes that name as
the username (``use_identity_as_username``), so the ACL that confines a password device confines
a certificate device the same way.

Keys are ECDSA P-256: small enough for microcontrollers' TLS stacks (mbedTLS, wolfSSL, BearSSL
all support it) and fast to verify. Every private key is written owner-only and atomically.

Errors::

    GatewayError
    └── TlsError            the CA is missing or unreadable, or a certificate cannot be issued
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.devices.broker_files import write_private
from gateway.errors import GatewayError

__all__ = [
    "CLIENT_DAYS",
    "CertificateAuthority",
    "IssuedCertificate",
    "TlsError",
    "TlsFiles",
]

CA_DAYS = 3650
SERVER_DAYS = 825
CLIENT_DAYS = 730  # two years: a device's certificate outlives a firmware cycle, not the box
CRL_DAYS = 400  # rebuilt at every broker start and revocation; OpenSSL refuses an expired CRL


class TlsError(GatewayError):
    """The gateway's CA or a certificate cannot be used as asked."""


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where the TLS material of one gateway lives (``<data_dir>/tls``)."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.crt"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def server_cert(self) -> Path:
        return self.directory / "server.crt"

    @property
    def server_key(self) -> Path:
        return self.directory / "server.key"

    @property
    def crl(self) -> Path:
        return self.directory / "ca.crl"

    @property
    def revoked(self) -> Path:
        return self.directory / "revoked.json"

    @property
    def devices(self) -> Path:
        """Per-device bundles (certificate, key, CA) that the installer hands to integrators."""
        return self.directory / "devices"


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A device's certificate bundle on disk."""

    common_name: str
    serial: int
    not_after: datetime
    cert_file: Path
    key_file: Path
    ca_file: Path


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def _cert_pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def _write_public(path: Path, text: str) -> None:
    # Certificates and the CRL are public, but they live in the data directory, where every file
    # is owner-only (0600): a mode wider than its neighbours' hides nothing and is one more thing
    # an audit has to reason about. Devices get them from 'einblick device add', not from here.
    write_private(path, text)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _san(hostnames: Iterable[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hostnames):
        if not host or host in {"0.0.0.0", "::"}:
            continue
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


class CertificateAuthority:
    """The CA's certificate and key, loaded from ``TlsFiles``; issues and revokes certificates."""

    def __init__(self, files: TlsFiles, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey):
        self.files = files
        self.cert = cert
        self.key = key

    # -- creation and loading -------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        files: TlsFiles,
        *,
        instance: str,
        hostnames: Sequence[str] = (),
        now: datetime | None = None,
    ) -> CertificateAuthority:
        """A new CA, server certificate and empty CRL; an existing CA is loaded, not replaced."""
        if files.ca_cert.exists() and files.ca_key.exists():
            ca = cls.load(files)
        else:
            now = now or datetime.now(UTC)
            key = _new_key()
            name = x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Einblick"),
                    x509.NameAttribute(NameOID.COMMON_NAME, f"Einblick gateway CA ({instance})"),
                ]
            )
            cert = (
                x509.CertificateBuilder()
                .subject_name(name)
                .issuer_name(name)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=CA_DAYS))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .add_extension(
                    x509.KeyUsage(
                        digital_signature=False,
                        content_commitment=False,
                        key_encipherment=False,
                        data_encipherment=False,
                        key_agreement=False,
                        key_cert_sign=True,
                        crl_sign=True,
                        encipher_only=False,
                        decipher_only=False,
                    ),
                    critical=True,
                )
                .add_extension(
                    x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
                )
                .sign(key, hashes.SHA256())
            )
            files.directory.mkdir(parents=True, exist_ok=True)
            os.chmod(files.directory, 0o700)
            write_private(files.ca_key, _key_pem(key))
            _write_public(files.ca_cert, _cert_pem(cert))
            ca = cls(files, cert, key)
        if not files.server_cert.exists() or not files.server_key.exists():
            ca.issue_server(hostnames, now=now)
        if not files.crl.exists():
            ca.write_crl(now=now)
        return ca

    @classmethod
    def load(cls, files: TlsFiles) -> CertificateAuthority:
        try:
            cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
            key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise TlsError(
                f"{files.directory}: the gateway's CA cannot be read ({exc}); "
                "'einblick init --force' creates one"
            ) from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TlsError(
                f"{files.ca_key}: expected an EC private key, found {type(key).__name__}"
            )
        return cls(files, cert, key)

    # -- issuing --------------------------------------------------------------------------------

    def _sign(
        self,
        subject: str,
        public_key: ec.EllipticCurvePublicKey,
        *,
        usage: x509.ObjectIdentifier,
        days: int,
        now: datetime,
        san: x509.SubjectAlternativeName | None = None,
        not_before: datetime | None = None,
    ) -> x509.Certificate:
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
            .issuer_name(self.cert.subject)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before or (now - timedelta(minutes=5)))
            .not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()),
                critical=False,
            )
        )
        if san is not None:
            builder = builder.add_extension(san, critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def issue_server(self, hostnames: Sequence[str], *, now: datetime | None = None) -> Path:
        """Mosquitto's certificate; valid for localhost, 127.0.0.1 and ``hostnames``."""
        now = now or datetime.now(UTC)
        names = ["localhost", "127.0.0.1", *hostnames]
        key = _new_key()
        first = next((h for h in names if h not in {"0.0.0.0", "::"}), "localhost")
        cert = self._sign(
            first,
            key.public_key(),
            usage=ExtendedKeyUsageOID.SERVER_AUTH,
            days=SERVER_DAYS,
            now=now,
            san=_san(names),
        )
        write_private(self.files.server_key, _key_pem(key))
        _write_public(self.files.server_cert, _cert_pem(cert))
        return self.files.server_cert

    def server_names(self) -> set[str] | None:
        """The names and addresses the listener's certificate is valid for; None when there is
        no readable certificate (then ``init`` issues one)."""
        try:
            cert = x509.load_pem_x509_certificate(self.files.server_cert.read_bytes())
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except (OSError, ValueError, x509.ExtensionNotFound):
            return None
        return {str(name) for name in san.get_values_for_type(x509.DNSName)} | {
            str(ip) for ip in san.get_values_for_type(x509.IPAddress)
        }

    @staticmethod
    def names_for(hostnames: Sequence[str]) -> set[str]:
        """What ``issue_server(hostnames)`` would make the certificate valid for."""
        return {
            str(ipaddress.ip_address(h)) if _is_ip(h) else h
            for h in ["localhost", "127.0.0.1", *hostnames]
            if h and h not in {"0.0.0.0", "::"}
        }

    def issue_client(
        self,
        common_name: str,
        directory: Path | None = None,
        *,
        days: int = CLIENT_DAYS,
        now: datetime | None = None,
        not_before: datetime | None = None,
    ) -> IssuedCertificate:
        """A device's certificate (CN = its broker username), key and the CA, in ``directory``.

        The directory (default ``data/tls/devices/<common name>``) is owner-only: it is what the
        installer hands to the integrator, and the key in it is the device's whole identity.
        """
        now = now or datetime.now(UTC)
        target = directory or self.files.devices / common_name
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, 0o700)
        key = _new_key()
        cert = self._sign(
            common_name,
            key.public_key(),
            usage=ExtendedKeyUsageOID.CLIENT_AUTH,
            days=days,
            now=now,
            not_before=not_before,
        )
        cert_file, key_file, ca_file = (
            target / "client.crt",
            target / "client.key",
            target / "ca.crt",
        )
        write_private(key_file, _key_pem(key))
        _write_public(cert_file, _cert_pem(cert))
        _write_public(ca_file, _cert_pem(self.cert))
        return IssuedCertificate(
            common_name, cert.serial_number, cert.not_valid_after_utc, cert_file, key_file, ca_file
        )

    # -- revocation -----------------------------------------------------------------------------

    def revoked_serials(self) -> dict[int, str]:
        """Revoked serial -> ISO time of revocation."""
        try:
            data = orjson.loads(self.files.revoked.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            raise TlsError(f"{self.files.revoked}: cannot be read: {exc}") from exc
        return {int(serial): str(at) for serial, at in data.get("revoked", {}).items()}

    def revoke(self, serials: Iterable[int], *, now: datetime | None = None) -> None:
        """Add ``serials`` to the revocation list and rewrite the CRL."""
        now = now or datetime.now(UTC)
        revoked = self.revoked_serials()
        for serial in serials:
            revoked.setdefault(serial, now.isoformat(timespec="seconds"))
        write_private(
            self.files.revoked,
            orjson.dumps(
                {"revoked": {str(s): at for s, at in sorted(revoked.items())}},
                option=orjson.OPT_INDENT_2,
            ).decode(),
        )
        self.write_crl(now=now)

    def write_crl(self, *, now: datetime | None = None) -> Path:
        """(Re)sign the CRL; Mosquitto refuses every client certificate once a CRL has expired,
        so it is rebuilt at each broker start as well as at each revocation."""
        now = now or datetime.now(UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.cert.subject)
            .last_update(now - timedelta(minutes=5))
            .next_update(now + timedelta(days=CRL_DAYS))
        )
        for serial, at in self.revoked_serials().items():
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(datetime.fromisoformat(at))
                .build()
            )
        crl = builder.sign(self.key, hashes.SHA256())
        _write_public(self.files.crl, crl.public_bytes(serialization.Encoding.PEM).decode("ascii"))
        return self.files.crl
