"""TLS to upstreams verifies certificates by default: a self-signed recipient is refused."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import MosquittoSettings
from gateway.devices.ports import free_port
from gateway.messages.endpoint import Endpoint
from gateway.messages.mqtt import MqttConnection
from tests.faults.site import Site, stream


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "cloud.crt", directory / "cloud.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    return cert_path, key_path


async def test_a_self_signed_upstream_is_refused_unless_its_ca_is_configured(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path)
    try:
        await site.setup()
        cert, key = self_signed(tmp_path / "pki")
        plain = site.clouds["oven-maker"]
        await plain.stop()
        tls_port = free_port()
        tls_cloud = Mosquitto(
            MosquittoSettings(
                directory=tmp_path / "cloud-tls",
                port=plain.settings.port,  # the spy keeps listening here, in plain text
                anonymous=True,
                tls_port=tls_port,
                ca_file=cert,
                cert_file=cert,
                key_file=key,
            )
        )
        tls_cloud.write_files([])
        await tls_cloud.start()
        site.clouds["oven-maker"] = tls_cloud
        text = site.config_path.read_text(encoding="utf-8")
        url = f"url: mqtt://127.0.0.1:{plain.settings.port}"
        assert url in text
        site.config_path.write_text(
            text.replace(url, f"url: mqtts://localhost:{tls_port}"), encoding="utf-8"
        )
        await site.start_gateway()
        device = site.device("press-1")
        await stream(device, "press-1", 20, 100.0)

        async def refused() -> bool:
            status = await site.status()
            up = next(u for u in status["upstreams"] if u["recipient"] == "oven-maker")
            return not up["connected"] and "certificate" in str(up["last_error"]).lower()

        await site.wait_until(refused, 20, "the gateway to refuse the unverified certificate")
        # The fence: a message sent to the same broker now, through its plain port. The spy gets
        # what the broker routed in order, so anything the gateway had got through would be
        # there before the fence (and waiting for it also proves the spy is back and listening).
        spy = site.spies["oven-maker"]
        fence = MqttConnection(Endpoint("127.0.0.1", plain.settings.port, "tls-test-fence"))
        await fence.open()
        await fence.publish("fence/tls", b"fence", 1)
        await fence.close()
        await site.wait_until(lambda: len(spy.received) >= 1, 20, "the fence at the spy")
        assert [(m.topic, m.payload) for m in spy.received] == [("fence/tls", b"fence")], (
            "data went to an unverified upstream"
        )
        spy.received.clear()  # the fence is not data: the count below is the gateway's
        assert (await site.status())["upstreams"][0]["outbox_depth"] == 20  # kept, not dropped
        # The same recipient with its CA configured: delivered. So it was verification that
        # refused it, not a broken TLS set-up.
        await site.stop_gateway()
        text = site.config_path.read_text(encoding="utf-8")
        site.config_path.write_text(
            text.replace(
                f"url: mqtts://localhost:{tls_port}\n",
                f"url: mqtts://localhost:{tls_port}\n    tls: {{ca_file: {cert}}}\n",
            ),
            encoding="utf-8",
        )
        await site.start_gateway()
        await site.wait_until(
            lambda: len(site.spies["oven-maker"].received) >= 20, 30, "delivery over TLS"
        )
        await device.close()
    finally:
        await site.teardown()
