"""Backup and restore of a whole box: the log, the keys, the configuration, the policies.

A backup is one tar file holding the box's files at the paths they have relative to its
``einblick.yaml``, and a manifest signed with the box's signing key:

    einblick-backup/manifest.json    what is inside: every file's SHA-256, size and whether it
                                     is secret; each customer's log size and signed size
    einblick-backup/manifest.sig     Ed25519 signature of manifest.json's exact bytes (hex)
    einblick.yaml, policies/…, data/einblick.db, data/keys/…, data/tls/…, data/devices.json, …

The database is copied with SQLite's online backup API. A running gateway makes the copy itself,
right after signing every log and before any further write (``Store.snapshot``), so every entry
in the backup is covered by a checkpoint while the gateway goes on forwarding. A stopped gateway's
database is copied as it lies (a tail a crash left unsigned is signed at the next start). The copy is verified before it
is written into the archive: a backup of a log that does not verify is refused, with the first
bad entry named, because restoring it would hand customers a broken proof.

Not in a backup, on purpose: Mosquitto's persistence (messages devices sent that the gateway had
not yet taken; replaying an old queue onto a new box would decide them a second time), the
broker's generated configuration, password file and ACL (written anew from ``devices.json`` at
start), the control socket and the process lock. Files the configuration names by an absolute
path (say a recipient's password under /etc) are listed in the manifest as not included.

Restoring an old backup rewinds each customer's log to the backup's size. A customer or witness
holding a later checkpoint sees a tree smaller than the one they hold: the entries after the
backup are gone from this box, and verification against the kept checkpoint says so. That is
the proof doing its job, not a fault: tell the customers, and never run the old box again with
the same key beside the restored one (two boxes would write two different histories).
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import sqlite3
import tarfile
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path, PurePosixPath
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.config import Config
from gateway.errors import GatewayError
from gateway.log.keys import PublicKey, Signer, load_public_key
from gateway.log.reports import VerifyReport
from gateway.log.verify import verify_db

__all__ = [
    "FORMAT",
    "BackupError",
    "BackupFile",
    "ChainState",
    "Manifest",
    "Restored",
    "create_backup",
    "read_manifest",
    "restore_backup",
]

FORMAT = "einblick-backup/1"
_PREFIX = "einblick-backup"
_MANIFEST = f"{_PREFIX}/manifest.json"
_SIGNATURE = f"{_PREFIX}/manifest.sig"
# The standard layout inside a backup (and of a restored box), relative to einblick.yaml.
_CONFIG = "einblick.yaml"
_DB = "data/einblick.db"
_KEY = "data/keys/signing.key"


class BackupError(GatewayError):
    """A backup cannot be made or restored; the message says what and what to do."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class BackupFile(_Model):
    name: str  # POSIX path relative to the box's einblick.yaml
    sha256: str
    size: int
    secret: bool  # private keys and passwords: restored owner-only (0600)


class ChainState(_Model):
    customer: str
    entries: int  # entries in the snapshot
    signed: int  # entries covered by its last checkpoint


class Manifest(_Model):
    format: Literal["einblick-backup/1"]
    einblick_version: str
    instance: str
    created_at: datetime
    gateway_running: bool  # the snapshot was taken live (after asking the gateway to sign)
    key_fingerprint: str
    public_key: str  # PEM; the restored log must verify with it
    chains: list[ChainState]
    files: list[BackupFile]
    not_included: list[str]  # files the configuration names by absolute path
    config_rewritten: bool  # the stored einblick.yaml has its paths made relative


class Restored(_Model):
    directory: Path
    config: Path
    manifest: Manifest


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _snapshot_db(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while the gateway keeps writing."""
    try:
        src = sqlite3.connect(Path(source).absolute().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open the log database {source}: {exc}") from exc
    try:
        dst = sqlite3.connect(target)
        try:
            # Pages in steps, so a busy writer is held up for one step at a time, not the copy.
            src.backup(dst, pages=1024)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file in the archive
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"copying the log database {source} failed: {exc}") from exc
    finally:
        src.close()


def _box_files(config: Config) -> Iterator[tuple[str, Path, bool]]:
    """(name in the backup, file on this box, secret) for everything a backup holds."""
    yield _CONFIG, config.source, False
    for policy in sorted(config.policies_path.glob("*.yaml")):
        yield f"policies/{policy.name}", policy, False
    keys = config.signing_key_path.parent
    for key in sorted(p for p in keys.iterdir() if p.is_file()) if keys.is_dir() else ():
        name = _KEY if key == config.signing_key_path else f"data/keys/{key.name}"
        yield name, key, not key.name.endswith(".pub")
    tls = config.data_path / "tls"
    for item in sorted(p for p in tls.iterdir() if p.is_file()) if tls.is_dir() else ():
        yield f"data/tls/{item.name}", item, item.suffix == ".key"
    for name, secret in (
        ("devices.json", False),
        ("policy-shapes.json", False),
        ("broker/gateway.secret", True),
    ):
        path = config.data_path / name
        if path.is_file():
            yield f"data/{name}", path, secret


def _referenced_files(config: Config) -> Iterator[tuple[str, Path]]:
    """Files the configuration names (recipients' passwords and TLS files)."""
    for recipient in config.recipients:
        for value in (
            recipient.password_file,
            recipient.tls.ca_file,
            recipient.tls.cert_file,
            recipient.tls.key_file,
        ):
            if value is not None:
                yield str(value), config.path(value)


def _relative_config(config: Config) -> tuple[bytes, bool]:
    """The configuration's text; rewritten with the backup's standard layout (``data/``,
    ``policies/``) when it placed the data or the policies anywhere else, since that is where
    the backup keeps them. Only then: a rewrite through YAML drops the file's comments."""
    text = config.source.read_bytes()
    base = config.base
    standard = (
        config.data_path == base / "data"
        and config.policies_path == base / "policies"
        and config.database_path == base / _DB
        and config.signing_key_path == base / _KEY
    )
    if standard:
        return text, False
    data = yaml.safe_load(text)
    for key in ("data_dir", "policies_dir", "database", "signing_key"):
        data.pop(key, None)
    data.update(data_dir="data", policies_dir="policies", instance=config.instance)
    header = (
        "# Restored from an Einblick backup: the data and policies now lie in data/ and\n"
        "# policies/ beside this file (the original placed them elsewhere).\n"
    )
    return (header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)).encode(), True


def _chain_states(report: VerifyReport) -> list[ChainState]:
    return [
        ChainState(customer=c.customer, entries=c.size - c.start, signed=c.signed - c.start)
        for c in report.chains
    ]


def create_backup(config: Config, dest: Path, *, snapshot: Path | None = None) -> Manifest:
    """Write the backup archive ``dest`` (a new file) and return its manifest.

    ``snapshot``: the database copy a running gateway made right after signing every log (its
    ``snapshot`` control request; this function takes the file over and deletes it). Without it
    the gateway is not running, and the database is copied here as it lies.
    """
    if dest.exists():
        raise BackupError(f"{dest} exists already; choose a new file name for the backup")
    if snapshot is None and not config.database_path.is_file():
        raise BackupError(
            f"there is no log at {config.database_path} yet: nothing to back up until the "
            "gateway has run once (einblick run)"
        )
    signer = Signer.load(config.signing_key_path)
    with tempfile.TemporaryDirectory(prefix="einblick-backup-") as scratch:
        db_copy = Path(scratch) / "einblick.db"
        if snapshot is not None:
            shutil.move(snapshot, db_copy)
        else:
            _snapshot_db(config.database_path, db_copy)
        report = verify_db(db_copy, public_key=signer.public)
        if not report.ok:
            raise BackupError(
                f"the log does not verify, so it is not backed up: {report.first or report.key_problems}. "
                f"Keep the evidence: stop the gateway and copy {config.data_path} as it is."
            )
        staged: list[tuple[str, Path | bytes, bool]] = []
        config_text, rewritten = _relative_config(config)
        staged.append((_CONFIG, config_text, False))
        # Read now, hashed from the same bytes that go into the archive: a file changed meanwhile
        # (a device added during the backup) cannot make the archive disagree with its manifest.
        staged.extend(
            (name, path.read_bytes(), secret)
            for name, path, secret in _box_files(config)
            if name != _CONFIG
        )
        staged.append((_DB, db_copy, False))
        not_included: list[str] = []
        for written, path in _referenced_files(config):
            if Path(written).is_absolute() or ".." in Path(written).parts:
                not_included.append(str(path))
            elif path.is_file():
                staged.append((PurePosixPath(Path(written)).as_posix(), path.read_bytes(), True))
        files = [_describe(name, source, secret) for name, source, secret in staged]
        manifest = Manifest(
            format=FORMAT,
            einblick_version=version("einblick"),
            instance=config.instance,
            created_at=datetime.now(UTC),
            gateway_running=snapshot is not None,
            key_fingerprint=signer.fingerprint,
            public_key=signer.public.pem(),
            chains=_chain_states(report),
            files=files,
            not_included=not_included,
            config_rewritten=rewritten,
        )
        manifest_bytes = manifest.model_dump_json(indent=2).encode() + b"\n"
        signature = signer.sign(manifest_bytes).hex().encode() + b"\n"
        partial = dest.with_name(dest.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
                _add_bytes(tar, _MANIFEST, manifest_bytes)
                _add_bytes(tar, _SIGNATURE, signature)
                for name, source, _ in staged:
                    if isinstance(source, bytes):
                        _add_bytes(tar, name, source)
                    else:
                        tar.add(source, arcname=name, recursive=False)
                raw.flush()
                os.fsync(raw.fileno())
            os.replace(partial, dest)  # a backup file exists whole or not at all
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return manifest


def _describe(name: str, source: Path | bytes, secret: bool) -> BackupFile:
    if isinstance(source, bytes):
        return BackupFile(
            name=name, sha256=hashlib.sha256(source).hexdigest(), size=len(source), secret=secret
        )
    return BackupFile(name=name, sha256=_sha256(source), size=source.stat().st_size, secret=secret)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(time.time())
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def read_manifest(archive: Path, *, key: PublicKey | None = None) -> Manifest:
    """The archive's manifest, after checking its signature (with ``key`` if given)."""
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            manifest_bytes = _member_bytes(tar, _MANIFEST)
            signature_hex = _member_bytes(tar, _SIGNATURE)
    except (OSError, tarfile.TarError) as exc:
        raise BackupError(f"{archive} is not an Einblick backup archive: {exc}") from exc
    try:
        manifest = Manifest.model_validate_json(manifest_bytes)
    except ValidationError as exc:
        raise BackupError(f"{archive}: the manifest is not of format {FORMAT}: {exc}") from exc
    own = load_public_key(manifest.public_key)
    if key is not None and key.raw != own.raw:
        raise BackupError(
            f"{archive} was signed by {own.fingerprint}, not by the key you trust "
            f"({key.fingerprint}): not restoring it"
        )
    try:
        signature = bytes.fromhex(signature_hex.decode("ascii").strip())
    except (UnicodeDecodeError, ValueError) as exc:
        raise BackupError(f"{archive}: the manifest's signature is not hex") from exc
    if not own.verify(signature, manifest_bytes):
        raise BackupError(
            f"{archive}: the manifest's signature does not verify: changed or damaged"
        )
    return manifest


def _member_bytes(tar: tarfile.TarFile, name: str) -> bytes:
    try:
        member = tar.getmember(name)
    except KeyError as exc:
        raise BackupError(f"the archive has no {name}") from exc
    handle = tar.extractfile(member) if member.isfile() else None
    if handle is None:
        raise BackupError(f"{name} in the archive is not a regular file")
    return handle.read()


def restore_backup(archive: Path, directory: Path, *, key: PublicKey | None = None) -> Restored:
    """Lay the backup out in ``directory`` (new or empty) and verify the restored log.

    Only the files the signed manifest lists are written, each checked against its SHA-256;
    any other member of the archive is ignored.
    """
    manifest = read_manifest(archive, key=key)
    if directory.exists() and any(directory.iterdir()):
        raise BackupError(f"{directory} is not empty; restore into a new or empty directory")
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    try:
        with tarfile.open(archive, mode="r:gz") as tar:
            for item in manifest.files:
                _restore_file(tar, item, directory)
    except (OSError, tarfile.TarError) as exc:
        shutil.rmtree(directory, ignore_errors=True)
        raise BackupError(f"restoring {archive} into {directory} failed: {exc}") from exc
    except BackupError:
        shutil.rmtree(directory, ignore_errors=True)
        raise
    report = verify_db(directory / _DB, public_key=load_public_key(manifest.public_key))
    if not report.ok:
        raise BackupError(
            f"the restored log does not verify: {report.first or report.key_problems}"
        )
    for state in manifest.chains:
        found = next((c for c in report.chains if c.customer == state.customer), None)
        if found is None or found.size - found.start != state.entries:
            raise BackupError(
                f"the restored log of {state.customer!r} has "
                f"{'no entries' if found is None else found.size - found.start} entries, "
                f"the manifest says {state.entries}"
            )
    return Restored(directory=directory, config=directory / _CONFIG, manifest=manifest)


def _restore_file(tar: tarfile.TarFile, item: BackupFile, directory: Path) -> None:
    """Write one listed file, streamed (a log of gigabytes must not need as much memory) and
    hashed on the way; a file that does not match the manifest is removed again."""
    relative = PurePosixPath(item.name)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise BackupError(f"the manifest names a path outside the box: {item.name!r}")
    try:
        member = tar.getmember(item.name)
    except KeyError as exc:
        raise BackupError(f"the archive has no {item.name}, which its manifest lists") from exc
    source = tar.extractfile(member) if member.isfile() else None
    if source is None:
        raise BackupError(f"{item.name} in the archive is not a regular file")
    target = directory.joinpath(*relative.parts)
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    digest = hashlib.sha256()
    size = 0
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        for block in iter(lambda: source.read(1 << 20), b""):
            digest.update(block)
            size += len(block)
            handle.write(block)
        handle.flush()
        os.fsync(handle.fileno())
    found = digest.hexdigest()
    if found != item.sha256 or size != item.size:
        target.unlink()
        raise BackupError(
            f"{item.name} in the archive is damaged: expected SHA-256 {item.sha256[:16]}… "
            f"({item.size} bytes), found {found[:16]}… ({size} bytes)"
        )
