"""Backup while running under load, restore onto a fresh directory, verify, continue the log.

All real: a running gateway with its managed Mosquitto, a device publishing all the while, the
``einblick backup`` and ``einblick restore`` commands, then a gateway started on the restored box
that the same device (same password) reaches and whose log continues the restored history.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
import tarfile
from pathlib import Path

import orjson
import pytest

from gateway.app import Gateway
from gateway.cli import main as cli_main
from gateway.config import load_config
from gateway.log.keys import load_public_key
from gateway.log.verify import verify_db
from gateway.messages.endpoint import Endpoint
from gateway.messages.mqtt import MqttConnection
from gateway.operations.backup import BackupError, read_manifest, restore_backup
from tests.gateway.harness import running_gateway
from tests.gateway.test_end_to_end import BAKERY

CUSTOMER = "baeckerei-schmidt"
TOPIC = "bakery/oven-1/telemetry"


async def _cli(*argv: str | Path) -> int:
    # The command runs its own event loop (as from a shell), so it runs in a thread here.
    return await asyncio.to_thread(cli_main, [str(a) for a in argv])


def _entries(db: Path, customer: str) -> int:
    report = verify_db(db)
    chain = next(c for c in report.chains if c.customer == customer)
    return chain.size - chain.start


async def _publish_until(device: MqttConnection, stop: asyncio.Event, sent: list[int]) -> None:
    seq = 0
    while not stop.is_set():
        seq += 1
        body = orjson.dumps({"temperature": 180 + seq % 7, "door_open": False, "seq": seq})
        await device.publish(TOPIC, body, 1)
        sent.append(seq)
        await asyncio.sleep(0.01)  # ~100 msg/s: a busy oven line, not a flood


def _rewrite(archive: Path, target: Path, change: str, new: bytes) -> None:
    """A copy of the archive with one member's bytes replaced (an attacker or a bad disk)."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(target, "w:gz") as dst:
        for member in src.getmembers():
            handle = src.extractfile(member)
            data = handle.read() if handle is not None else b""
            if member.name == change:
                data = new
            member.size = len(data)
            dst.addfile(member, io.BytesIO(data))


async def test_backup_under_load_restores_elsewhere_verifies_and_continues(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "box.tar.gz"
    restored_dir = tmp_path / "restored"
    async with running_gateway(
        tmp_path, {"bakery.yaml": BAKERY}, [(CUSTOMER, "oven-1", "Backofen 1")]
    ) as h:
        config_path = h.directory / "einblick.yaml"
        public = h.directory / "data" / "keys" / "signing.pub"
        oven = await h.device(CUSTOMER, "oven-1")
        password = h.passwords[(CUSTOMER, "oven-1")]
        stop = asyncio.Event()
        sent: list[int] = []
        async with asyncio.TaskGroup() as tg:
            tg.create_task(_publish_until(oven, stop, sent), name="oven-publishing")
            await h.wait_committed(50, timeout=20)
            # The backup is taken while the oven keeps publishing.
            assert await _cli("backup", "-c", config_path, archive) == 0
            backed_up_at = len(sent)
            await h.wait_committed(backed_up_at + 20, timeout=20)
            stop.set()
        out = capsys.readouterr().out
        assert f"backup of {h.gateway.config.instance} written to {archive}" in out

        manifest = read_manifest(archive, key=load_public_key(public))
        assert manifest.gateway_running
        (chain,) = [c for c in manifest.chains if c.customer == CUSTOMER]
        # The gateway signed before the snapshot: every backed-up entry is covered.
        assert chain.entries >= 50 and chain.signed == chain.entries
        names = {f.name for f in manifest.files}
        assert {
            "einblick.yaml",
            "policies/bakery.yaml",
            "data/einblick.db",
            "data/keys/signing.key",
            "data/devices.json",
            "data/tls/ca.key",
        } <= names
        assert {f.name for f in manifest.files if f.secret} >= {
            "data/keys/signing.key",
            "data/tls/ca.key",
        }
        assert (archive.stat().st_mode & 0o777) == 0o600
        live_entries = _entries(h.directory / "data" / "einblick.db", CUSTOMER)
        assert live_entries > chain.entries  # the box went on after the backup
        await oven.close()
        h.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await h.task

        # Restore onto a "fresh box": a new directory, with the key the installer trusts.
        assert await _cli("restore", archive, restored_dir, "--key", public) == 0
        assert "the log verifies" in capsys.readouterr().out
        restored_db = restored_dir / "data" / "einblick.db"
        assert _entries(restored_db, CUSTOMER) == chain.entries
        assert (restored_dir / "data" / "keys" / "signing.key").stat().st_mode & 0o077 == 0

        # The restored box runs, the same device gets in with its password, the log continues.
        config = load_config(restored_dir / "einblick.yaml")
        gateway = Gateway(config)
        task = asyncio.get_running_loop().create_task(gateway.run(), name="restored-gateway")
        try:
            async with asyncio.timeout(20):
                await gateway.ready.wait()
                # A restored box starts its broker without the old queue (see gateway/operations/backup.py):
                # the device's message must wait until the gateway's session has subscribed.
                while not gateway.device_state.connected or not all(
                    f.state.connected for f in gateway.forwarders.values()
                ):
                    await asyncio.sleep(0.02)
            device = MqttConnection(
                Endpoint(
                    "127.0.0.1",
                    config.broker.port,
                    f"{CUSTOMER}.oven-1",
                    username=f"{CUSTOMER}.oven-1",
                    password=password,
                )
            )
            await device.open()
            before = len(h.cloud.received)
            await device.publish(TOPIC, b'{"temperature": 199.0, "door_open": true}', 1)
            async with asyncio.timeout(20):
                while not any(
                    orjson.loads(m.payload).get("temperature") == 199.0
                    for m in h.cloud.received[before:]
                ):
                    await asyncio.sleep(0.05)
            await device.close()
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        report = verify_db(restored_db, public_key=load_public_key(public))
        assert report.ok, report.summary()
        assert _entries(restored_db, CUSTOMER) > chain.entries
        assert report.unsigned == 0  # the clean stop signed the continued tail

        # A backup of a stopped box works too, and says so.
        offline = tmp_path / "offline.tar.gz"
        assert await _cli("backup", "-c", config_path, offline) == 0
        assert "not running" in capsys.readouterr().err
        assert not read_manifest(offline).gateway_running

    # What a restore refuses, each with a clear reason and nothing left half-written.
    assert await _cli("backup", "-c", config_path, archive) == 2  # never overwrites
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(archive, restored_dir)
    foreign = tmp_path / "foreign.pub"
    foreign.write_text("11" * 32)
    with pytest.raises(BackupError, match="not by the key you trust"):
        restore_backup(archive, tmp_path / "r1", key=load_public_key(foreign))
    damaged = tmp_path / "damaged.tar.gz"
    _rewrite(archive, damaged, "policies/bakery.yaml", b"einblick_policy: 1\ncustomer: x\n")
    with pytest.raises(BackupError, match=r"policies/bakery.yaml in the archive is damaged"):
        restore_backup(damaged, tmp_path / "r2")
    assert not (tmp_path / "r2").exists()
    forged = tmp_path / "forged.tar.gz"
    with tarfile.open(archive, "r:gz") as tar:
        handle = tar.extractfile("einblick-backup/manifest.json")
        assert handle is not None
        text = handle.read().replace(b'"gateway_running": true', b'"gateway_running": false')
    _rewrite(archive, forged, "einblick-backup/manifest.json", text)
    with pytest.raises(BackupError, match="signature does not verify"):
        restore_backup(forged, tmp_path / "r3")
    not_gzip = tmp_path / "plain.tar.gz"
    not_gzip.write_bytes(gzip.compress(b"not a tar file"))
    with pytest.raises(BackupError, match="not an Einblick backup archive"):
        restore_backup(not_gzip, tmp_path / "r4")
