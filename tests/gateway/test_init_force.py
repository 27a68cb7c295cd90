"""`einblick init --force` over an existing box renews what its options change (the listener
certificate for a new --hostname, the ports), keeps keys, the log, the CA, devices and policies,
and says which is which."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from gateway.cli import main as einblick
from gateway.log.keys import Signer


def names(cert: Path) -> set[str]:
    loaded = x509.load_pem_x509_certificate(cert.read_bytes())
    san = loaded.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n) for n in san.get_values_for_type(x509.DNSName)}


def test_force_with_a_new_hostname_reissues_the_listener_certificate_and_keeps_the_rest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = tmp_path / "box"
    assert einblick(["init", str(box), "--hostname", "old.example", "--port", "1883"]) == 0
    tls, keys = box / "data" / "tls", box / "data" / "keys"
    ca_before = (tls / "ca.crt").read_bytes()
    key_before = (keys / "signing.key").read_bytes()
    (box / "data" / "einblick.db").write_bytes(b"the log")  # stands for a log with entries
    policy = box / "policies" / "bakery.yaml"
    policy.write_text(policy.read_text(encoding="utf-8") + "# adapted by the installer\n")
    assert "old.example" in names(tls / "server.crt")
    capsys.readouterr()

    code = einblick(["init", str(box), "--force", "--hostname", "new.example", "--port", "1884"])
    assert code == 0
    err = capsys.readouterr().err
    assert "renewed: listener certificate" in err and "new.example" in err, err
    assert "renewed: broker.port" in err and "1883 -> 1884" in err, err
    fingerprint = Signer.load(keys / "signing.key").fingerprint
    assert f"kept:    signing key {keys / 'signing.key'} (fingerprint {fingerprint})" in err, err
    assert f"kept:    the log {(box / 'data' / 'einblick.db').resolve()}" in err, err
    assert "kept:    the CA" in err and "kept:    policies" in err, err
    # What was renewed is renewed; what was kept is byte for byte the same.
    assert "new.example" in names(tls / "server.crt")
    assert "old.example" not in names(tls / "server.crt")
    server = x509.load_pem_x509_certificate((tls / "server.crt").read_bytes())
    server.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))
    assert (tls / "ca.crt").read_bytes() == ca_before
    assert (keys / "signing.key").read_bytes() == key_before
    assert (box / "data" / "einblick.db").read_bytes() == b"the log"
    assert policy.read_text(encoding="utf-8").endswith("# adapted by the installer\n")
    assert "  port: 1884\n" in (box / "einblick.yaml").read_text(encoding="utf-8")
    assert "  port: 1883\n" in (box / "einblick.yaml.bak").read_text(encoding="utf-8")


def test_force_with_the_same_options_renews_no_certificate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    box = tmp_path / "box"
    assert einblick(["init", str(box), "--hostname", "same.example"]) == 0
    server_before = (box / "data" / "tls" / "server.crt").read_bytes()
    capsys.readouterr()
    assert einblick(["init", str(box), "--force", "--hostname", "same.example"]) == 0
    err = capsys.readouterr().err
    assert "listener certificate" not in err and "broker.port" not in err, err
    assert (box / "data" / "tls" / "server.crt").read_bytes() == server_before
