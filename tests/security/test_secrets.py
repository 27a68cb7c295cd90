"""Secrets stay secret: owner-only files, and no password or key in any log, export or status."""

from __future__ import annotations

import asyncio
import base64
import sqlite3
import stat
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from gateway.operations.control import request
from tests.faults.site import POLICY, Site, stream

PSEUDONYMISING = POLICY.replace(
    "      force_kn: keep\n", "      force_kn: keep\n      dev: pseudonymise\n"
)


def forms(secret: bytes) -> set[bytes]:
    """The ways a secret could be written down: raw, hex, base64 (both alphabets)."""
    out = {secret, secret.hex().encode(), secret.hex().upper().encode()}
    for encode in (base64.b64encode, base64.urlsafe_b64encode):
        out.add(encode(secret))
        out.add(encode(secret).rstrip(b"="))
    return {f for f in out if len(f) >= 8}


async def _run(*args: str) -> bytes:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    return out


async def test_no_secret_in_logs_exports_or_status_and_key_files_are_owner_only(
    tmp_path: Path,
) -> None:
    site = Site(tmp_path)
    try:
        await site.setup(policy=PSEUDONYMISING)
        await site.start_gateway("-vv")  # debug logging: the most a log will ever say
        config = site.config
        device = site.device("press-1")
        await stream(device, "press-1", 50, 100.0)
        await site.wait_until(site.outbox_empty, 20, "the outbox to drain")
        # 'billing' rests on a contract: the customer restricts it (there is no consent).
        await request(
            config.control_socket,
            "restrict",
            customer="werk-nord",
            grant="billing",
            by="Werkleitung Nord",
        )
        status = await _run("status", "--config", str(site.config_path))
        status_json = str(await site.status()).encode()
        bundle = await _run("export", "--config", str(site.config_path), "--customer", "werk-nord")
        verified = await _run("verify", "--config", str(site.config_path))
        await device.close()
        await site.stop_gateway()

        # The secrets, in every form they exist on the box.
        secrets: dict[str, bytes] = {}
        for name, password in site.passwords.items():
            secrets[f"device password {name}"] = password.encode()
        gateway_secret = config.broker_dir / "gateway.secret"
        secrets["gateway broker password"] = gateway_secret.read_text().strip().encode()
        key_pem = config.signing_key_path.read_bytes()
        private = serialization.load_pem_private_key(key_pem, None)
        raw = private.private_bytes(  # type: ignore[union-attr]
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        secrets["signing key (raw)"] = raw
        secrets["signing key (PEM body)"] = b"".join(key_pem.splitlines()[1:-1])
        conn = sqlite3.connect(config.database_path)
        keys = conn.execute("SELECT customer, recipient, key FROM pseudonym_keys").fetchall()
        conn.close()
        assert keys, "the policy pseudonymises, so a pseudonym key must exist"
        for customer, recipient, key in keys:
            secrets[f"pseudonym key {customer}/{recipient}"] = bytes(key)

        # Everything a person or another program gets to read.
        readable = {
            "gateway stderr": site.gateway_log.read_bytes(),
            "mosquitto log": (config.broker_dir / "mosquitto.log").read_bytes(),
            "einblick status": status,
            "status (control socket)": status_json,
            "export bundle": bundle,
            "einblick verify": verified,
        }
        readable.update(_log_files(tmp_path))
        assert len(bundle) > 1000 and b"werk-nord" in bundle, bundle[:500]
        for where, text in readable.items():
            for what, secret in secrets.items():
                for form in forms(secret):
                    assert form not in text, f"{what} appears in {where}"

        # Owner-only: keys, secrets, the password file, the database, the control socket.
        private_files = [
            config.signing_key_path,
            gateway_secret,
            config.broker_dir / "passwd",
            config.broker_dir / "acl",
            config.broker_dir / "mosquitto.conf",
            config.database_path,
            config.data_path / "devices.json",
        ]
        for path in private_files:
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode & 0o077 == 0, f"{path.name} is {oct(mode)}; expected owner-only"
        for directory in (config.data_path, config.signing_key_path.parent, config.broker_dir):
            mode = stat.S_IMODE(directory.stat().st_mode)
            assert mode & 0o077 == 0, f"{directory} is {oct(mode)}; expected owner-only"
    finally:
        await site.teardown()


def _log_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.log")}


def test_a_key_file_others_can_read_is_refused(tmp_path: Path) -> None:
    from gateway.errors import KeyFileError
    from gateway.log.keys import Signer

    path = tmp_path / "signing.key"
    Signer.generate(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o644)
    with pytest.raises(KeyFileError):
        Signer.load(path)
