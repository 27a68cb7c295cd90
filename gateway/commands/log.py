"""``einblick verify | export | key …``: the explanation log from the command line.

Data goes to stdout (``einblick export … | jq``), diagnostics to stderr. The handler functions
take explicit paths so the CLI can default them from the gateway configuration.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from gateway.commands.gateway_cmds import add_config_option
from gateway.config import Config, load_config
from gateway.errors import LogError
from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.keys import Signer, load_public_key
from gateway.log.reader import Reader
from gateway.log.schema import configure_writer, ensure_schema
from gateway.log.verify import VerifyReport, verify_db
from gateway.log.writer import LogWriter

__all__ = [
    "export_command",
    "key_generate_command",
    "key_rotate_command",
    "key_show_command",
    "register",
    "verify_command",
]


def _print_report(report: VerifyReport, out: TextIO, err: TextIO) -> int:
    print(report.summary(), file=out)
    if report.unsigned:
        print(
            f"warning: {report.unsigned} entries are not yet covered by a signed checkpoint",
            file=err,
        )
    first = report.first
    if first is not None:
        print(f"error: {first}", file=err)
    for problem in report.key_problems:
        print(f"error: {problem}", file=err)
    return 0 if report.ok else 1


def verify_command(
    *,
    bundle: Path | None,
    db: Path | None,
    customer: str | None,
    key: Path | None,
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Verify a bundle (with ``key``) or the database; 0 when everything verifies, 1 if not."""
    public = None if key is None else load_public_key(key)
    if bundle is not None:
        if public is None:
            raise LogError("verify: a bundle needs --key PUBKEY (the key you trust, not its own)")
        data = sys.stdin.buffer.read() if str(bundle) == "-" else bundle.read_bytes()
        return _print_report(verify_bundle(data, public), out, err)
    if db is None:
        raise LogError("verify: give a BUNDLE file or --db PATH")
    if not db.exists():
        raise LogError(f"verify: {db}: no such log database")
    return _print_report(verify_db(db, customer=customer, public_key=public), out, err)


def export_command(
    *, db: Path, customer: str, since: datetime | None, out_path: Path | None
) -> int:
    data = export_customer(db, customer, since)
    if out_path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        out_path.write_bytes(data)
    return 0


def key_show_command(*, key: Path, out: TextIO = sys.stdout) -> int:
    """Print the public key (PEM) and its fingerprint; accepts a private or a public key file."""
    raw = key.read_bytes() if key.exists() else b""
    private = b"PRIVATE KEY" in raw or len(raw) == 32
    public = Signer.load(key).public if private else load_public_key(key)
    print(public.pem(), end="", file=out)
    print(f"fingerprint: {public.fingerprint}", file=out)
    return 0


def key_generate_command(*, path: Path, out: TextIO = sys.stdout) -> int:
    signer = Signer.generate(path)
    public_path = path.with_name(path.name + ".pub")
    public_path.write_text(signer.public.pem())
    print(f"private key: {path} (mode 0600)", file=out)
    print(f"public key:  {public_path}", file=out)
    print(f"fingerprint: {signer.fingerprint}", file=out)
    return 0


def key_rotate_command(*, db: Path, key: Path, new_key: Path, out: TextIO = sys.stdout) -> int:
    """Rotate the log's signing key; the gateway must be stopped (one writer owns the log)."""
    old = Signer.load(key)
    new = Signer.load(new_key) if new_key.exists() else Signer.generate(new_key)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        configure_writer(conn)
        ensure_schema(conn)
        origin = Reader.over(conn, db).origin
        if not origin:
            raise LogError(f"key rotate: {db}: not an Einblick log (no origin)")
        writer = LogWriter(conn, old, origin)
        conn.execute("BEGIN IMMEDIATE")
        try:
            now = datetime.now(UTC)
            writer.rotate_key(new, now)
            writer.checkpoint(now)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        writer.committed()
    finally:
        conn.close()
    print(f"rotated: {old.fingerprint} -> {new.fingerprint}", file=out)
    return 0


def _since(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected an ISO 8601 time, found {text!r}") from exc
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _config(args: argparse.Namespace) -> Config | None:
    """The gateway configuration, when there is one to take defaults from."""
    path: Path = args.config
    if not path.exists():
        return None
    return load_config(path)


def _rotate(args: argparse.Namespace) -> int:
    from gateway.operations.lock import DirectoryLock

    db = _db(args)
    config = _config(args)
    # The log has one writer: a running gateway holds this lock, and rotation must wait for it.
    directory = config.data_path if config is not None else db.parent
    with DirectoryLock(directory, instance="key rotate"):
        return key_rotate_command(db=db, key=_private_key(args), new_key=args.new_key)


def _db(args: argparse.Namespace) -> Path:
    if args.db is not None:
        return Path(args.db)
    config = _config(args)
    if config is None:
        raise LogError(f"no --db given and no configuration at {args.config} to find the log in")
    return config.database_path


def _private_key(args: argparse.Namespace) -> Path:
    if args.key is not None:
        return Path(args.key)
    config = _config(args)
    if config is None:
        raise LogError(f"no --key given and no configuration at {args.config} to find it in")
    return config.signing_key_path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    verify = subparsers.add_parser("verify", help="verify the log or an exported bundle")
    verify.add_argument("bundle", nargs="?", type=Path, help="bundle file ('-' for stdin)")
    add_config_option(verify)
    verify.add_argument("--db", type=Path, help="log database (default: from the configuration)")
    verify.add_argument("--customer", help="verify only this customer's chain")
    verify.add_argument("--key", type=Path, help="public key to trust (PEM or hex file)")
    verify.set_defaults(
        func=lambda a: verify_command(
            bundle=a.bundle, db=None if a.bundle else _db(a), customer=a.customer, key=a.key
        )
    )

    export = subparsers.add_parser("export", help="export a customer's signed log bundle")
    add_config_option(export)
    export.add_argument("--customer", required=True)
    export.add_argument("--since", type=_since, help="ISO time; starts at the checkpoint before")
    export.add_argument("--db", type=Path, help="log database (default: from the configuration)")
    export.add_argument("--out", type=Path, help="file to write (default stdout)")
    export.set_defaults(
        func=lambda a: export_command(db=_db(a), customer=a.customer, since=a.since, out_path=a.out)
    )

    key = subparsers.add_parser("key", help="the log's signing key")
    key_sub = key.add_subparsers(dest="key_command", required=True)
    show = key_sub.add_parser("show", help="print the public key and its fingerprint")
    add_config_option(show)
    show.add_argument("--key", type=Path, help="key file (default: from the configuration)")
    show.set_defaults(func=lambda a: key_show_command(key=_private_key(a)))
    generate = key_sub.add_parser("generate", help="create a new key file (mode 0600)")
    generate.add_argument("path", type=Path)
    generate.set_defaults(func=lambda a: key_generate_command(path=a.path))
    rotate = key_sub.add_parser("rotate", help="rotate the signing key (gateway stopped)")
    add_config_option(rotate)
    rotate.add_argument("--db", type=Path, help="log database (default: from the configuration)")
    rotate.add_argument("--key", type=Path, help="the current private key (default: configured)")
    rotate.add_argument("--new-key", type=Path, required=True, help="new key (created if absent)")
    rotate.set_defaults(func=_rotate)
