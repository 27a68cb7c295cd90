"""Commands that keep a box: backup and restore."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.commands.gateway_cmds import SubParsers, add_config_option, config_from

__all__ = ["register"]


def register(sub: SubParsers) -> None:
    backup = sub.add_parser(
        "backup",
        help="write the log, keys, configuration and policies to one signed archive "
        "(the gateway may keep running)",
    )
    add_config_option(backup)
    backup.add_argument("dest", type=Path, help="the archive to write (a new .tar.gz file)")
    backup.set_defaults(func=_backup)

    restore = sub.add_parser(
        "restore", help="lay a backup out on a new box and verify its log before anything runs"
    )
    restore.add_argument("archive", type=Path)
    restore.add_argument("directory", type=Path, help="a new or empty directory for the box")
    restore.add_argument(
        "--key",
        help="the public key the backup must be signed with (PEM or hex file); "
        "without it the fingerprint is printed for you to compare",
    )
    restore.set_defaults(func=_restore)


def _backup(args: argparse.Namespace) -> int:
    from gateway.operations import control_model as ops
    from gateway.operations.backup import create_backup
    from gateway.operations.control import GatewayNotRunning, ask

    config = config_from(args)
    snapshot: Path | None = None
    try:
        answer = asyncio.run(ask(config.control_socket, ops.SNAPSHOT, timeout=600))
        snapshot = Path(answer.path)
    except GatewayNotRunning:
        print(
            "the gateway is not running: backing up the log as it is "
            "(a tail left by a crash is signed at the next start)",
            file=sys.stderr,
        )
    try:
        manifest = create_backup(config, args.dest, snapshot=snapshot)
    finally:
        if snapshot is not None:
            snapshot.unlink(missing_ok=True)
    total = sum(c.entries for c in manifest.chains)
    print(
        f"backup of {manifest.instance} written to {args.dest}: {len(manifest.files)} files, "
        f"{total:,} log entries, signed by {manifest.key_fingerprint}"
    )
    for chain in manifest.chains:
        print(f"  {chain.customer}: {chain.entries:,} entries, {chain.signed:,} signed")
    for missing in manifest.not_included:
        print(f"  NOT included (absolute path, copy it yourself): {missing}")
    print("The archive holds the private signing key: keep it as carefully as the box itself.")
    return 0


def _restore(args: argparse.Namespace) -> int:
    from gateway.log.keys import load_public_key
    from gateway.operations.backup import restore_backup

    key = load_public_key(args.key) if args.key else None
    restored = restore_backup(args.archive, args.directory, key=key)
    manifest = restored.manifest
    print(
        f"restored {manifest.instance} (backup of {manifest.created_at:%Y-%m-%d %H:%M} UTC, "
        f"Einblick {manifest.einblick_version}) into {restored.directory}; the log verifies"
    )
    if key is None:
        print(f"  signed by {manifest.key_fingerprint}: compare it with the fingerprint you keep")
    for chain in manifest.chains:
        print(f"  {chain.customer}: {chain.entries:,} entries")
    for missing in manifest.not_included:
        print(f"  not in the backup, copy it yourself: {missing}")
    print(
        "Customers who kept a checkpoint newer than this backup will see their log end earlier\n"
        "than that checkpoint: tell them. Never start the old box again with this key.\n"
        f"next: einblick run --config {restored.config}"
    )
    return 0
