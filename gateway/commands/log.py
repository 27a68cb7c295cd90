"""``einblick verify | export | key …``: the explanation log from the command line.

Data goes to stdout (``einblick export … | jq``), diagnostics to stderr. The handler functions
take explicit paths so the CLI can default them from the gateway configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from gateway.commands.gateway_cmds import add_config_option
from gateway.commands.instances import add_instances_option, use_owner
from gateway.config import Config, load_config
from gateway.errors import BundleError, KeyFileError, LogError
from gateway.log.bundle import export_customer, verify_bundle, verify_bundle_file
from gateway.log.checkpoints import latest_note
from gateway.log.keys import PublicKey, Signer, load_public_key
from gateway.log.leaf import tree_origin
from gateway.log.legacy_bundle import verify_bundle_v1
from gateway.log.note import (
    ED25519_TYPE,
    PROOF_HEADER,
    NoteError,
    Verifier,
)
from gateway.log.prove import check_entry_proof, prove_entry_file
from gateway.log.reader import Reader
from gateway.log.reports import VerifyReport
from gateway.log.schema import configure_writer, ensure_schema
from gateway.log.verdict import (
    INCOMPLETE,
    TAMPERED,
    UNUSABLE,
    TreeVerdict,
    UnusableInput,
    WitnessPolicy,
)
from gateway.log.verify import verify_db
from gateway.log.writer import LogWriter
from gateway.visible import neutralise

__all__ = [
    "export_command",
    "key_generate_command",
    "key_rotate_command",
    "key_show_command",
    "prove_command",
    "register",
    "verify_command",
]


EXIT_CODES = """exit codes: 0 verified; 1 tampered (the first bad entry is named); 2 incomplete
(something is not covered by a verified checkpoint); 3 unusable input (not a bundle, no key)"""


def _print_report(report: VerifyReport, out: TextIO, err: TextIO) -> int:
    """The database's report; an unsigned tail is 'incomplete' (exit 2), never OK."""
    print(report.summary(), file=out)
    first = report.first
    if first is not None:
        print(f"error: {first}", file=err)
    for problem in report.key_problems:
        print(f"error: {problem}", file=err)
    if not report.ok:
        return TAMPERED
    if report.unsigned:
        print(
            f"incomplete: {report.unsigned} entries are not yet covered by a signed checkpoint "
            "(a running gateway signs within a second; run again, or export: it signs first)",
            file=err,
        )
        return INCOMPLETE
    return 0


def _print_verdict(verdict: TreeVerdict, out: TextIO, err: TextIO) -> int:
    state = {0: "OK", 1: "TAMPERED", 2: "INCOMPLETE"}[verdict.code]
    print(
        f"{verdict.origin}: {verdict.size} entries"
        + (f" (the first {verdict.start} compacted)" if verdict.start else "")
        + f", {verdict.checkpoints} verified checkpoint(s) covering {verdict.covered}; "
        f"keys {' → '.join(verdict.keys)}: {state}",
        file=out,
    )
    if verdict.problem is not None:
        print(f"error: {verdict.problem}", file=err)
    return verdict.code


def _witness_policy(witnesses: list[str], required: int | None) -> WitnessPolicy:
    try:
        keys = tuple(Verifier.parse(w) for w in witnesses)
    except NoteError as exc:
        raise UnusableInput(f"--witness: {exc}") from exc
    return WitnessPolicy(keys, len(keys) if required is None else required)


def _verify_proof(text: str, public: PublicKey, out: TextIO, err: TextIO) -> int:
    """A single-entry c2sp.org/tlog-proof@v1 file: leaf from ``extra``, inclusion, signature."""
    verdict = check_entry_proof(text, public)
    if verdict.problem is not None:
        print(f"error: {verdict.problem}", file=err)
        return verdict.code
    print(
        f"{verdict.origin}: the entry is in the signed tree of {verdict.size} entries: OK", file=out
    )
    # Both are JSON a device's text went into: RFC 8785 leaves C1 controls and bidi marks raw,
    # so they are written visibly rather than handed to the terminal.
    if verdict.body:
        print(neutralise(verdict.body.decode("utf-8", "replace")), file=out)
    if verdict.names:  # checked against the body's names commitment
        print(neutralise(verdict.names.decode("utf-8", "replace")), file=out)
    return 0


def verify_command(
    *,
    bundle: Path | None,
    db: Path | None,
    customer: str | None,
    key: Path | None,
    since: Path | None = None,
    witnesses: list[str] | None = None,
    witnesses_required: int | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Verify a bundle or a proof (with ``key``) or the database; the exit codes above."""
    out = sys.stdout if out is None else out  # read at call time: tests and pipes swap them
    err = sys.stderr if err is None else err
    try:
        public = None if key is None else load_public_key(key)
        policy = _witness_policy(witnesses or [], witnesses_required)
        if bundle is not None:
            if public is None:
                raise UnusableInput(
                    "verify: a bundle needs --key PUBKEY (the key you trust, not its own)"
                )
            # A v2/v3 bundle in a file is streamed (read twice, never whole); standard input
            # and pipes (``<(…)``) can be read only once, so they are read whole.
            whole = str(bundle) == "-" or not bundle.is_file()
            if whole:
                data = sys.stdin.buffer.read() if str(bundle) == "-" else bundle.read_bytes()
            else:
                with bundle.open("rb") as head:
                    data = head.read(300)
                if not data.startswith(b'{"customer":') or b'"format":"einblick-bundle/v1"' in data:
                    data = bundle.read_bytes()
            if data.startswith(PROOF_HEADER.encode()):
                return _verify_proof(data.decode("utf-8", "replace"), public, out, err)
            if data.startswith(b'{"customer":') and b'"format":"einblick-bundle/v1"' in data[:300]:
                print("legacy bundle (einblick-bundle/v1, hash chains)", file=out)
                try:  # an export made before the trees: verified as that release did, 0 or 1
                    report = verify_bundle_v1(data, public)
                except BundleError as exc:
                    print(f"error: {exc}", file=err)
                    return TAMPERED
                code = _print_report(report, out, err)
                return TAMPERED if code == TAMPERED else 0
            if whole:
                verdict = verify_bundle(data, public, witnesses=policy, since=since)
            else:
                verdict = verify_bundle_file(bundle, public, witnesses=policy, since=since)
            return _print_verdict(verdict, out, err)
        if db is None:
            raise UnusableInput("verify: give a BUNDLE file or --db PATH")
        if not db.exists():
            raise UnusableInput(f"verify: {db}: no such log database")
        return _print_report(
            verify_db(db, customer=customer, public_key=public, witnesses=policy), out, err
        )
    except (UnusableInput, KeyFileError, BundleError, OSError) as exc:
        print(f"error: unusable input: {exc}", file=err)
        return UNUSABLE


def _sign_now(args: argparse.Namespace, db: Path) -> None:
    """Sign every log before an export or a proof, so what is handed out is fully covered."""
    from gateway.operations.control import GatewayNotRunning, request

    config = _config(args)
    if config is not None:
        try:
            asyncio.run(request(config.control_socket, "checkpoint", timeout=60))
            return
        except GatewayNotRunning:
            pass
    from gateway.operations.lock import DirectoryLock

    directory = config.data_path if config is not None else db.parent
    key_path = getattr(args, "key", None) or (
        config.signing_key_path if config is not None else None
    )
    if key_path is None:
        raise LogError(
            "export: the log must be signed first, and no signing key was found: pass --key "
            "PRIVATE_KEY or --config (or start the gateway)"
        )
    with DirectoryLock(directory, instance="export"):
        conn = sqlite3.connect(db, isolation_level=None)
        try:
            configure_writer(conn)
            ensure_schema(conn)
            origin = Reader.over(conn, db).origin
            LogWriter(conn, Signer.load(key_path), origin)  # signs any unsigned tail at start
        finally:
            conn.close()


def export_command(
    *, db: Path, customer: str, out_path: Path | None, checkpoint_out: Path | None = None
) -> int:
    data = export_customer(db, customer, signed_only=True)  # the gateway may still append
    if out_path is None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        out_path.write_bytes(data)
    target = checkpoint_out
    if target is None and out_path is not None:
        target = out_path.with_name(out_path.name + ".checkpoint")
    if target is not None:
        conn = sqlite3.connect(Path(db).absolute().as_uri() + "?mode=ro", uri=True)
        try:
            note = latest_note(conn, customer)
        finally:
            conn.close()
        if note is not None:
            target.write_text(note)
            print(f"checkpoint to keep: {target}", file=sys.stderr)
    return 0


def prove_command(*, db: Path, customer: str, entry: int, out_path: Path | None) -> int:
    """Write entry ``entry`` of ``customer``'s tree as a c2sp.org/tlog-proof@v1 file."""
    text = prove_entry_file(db, customer, entry).text
    if out_path is None:
        sys.stdout.write(text)
    else:
        out_path.write_text(text)
    return 0


def key_show_command(*, key: Path, origin: str | None = None, out: TextIO = sys.stdout) -> int:
    """Print the public key (PEM) and its fingerprint; accepts a private or a public key file.
    With ``origin`` (a customer's log), also the signed-note verifier key that Go's sumdb/note
    and every other c2sp.org/signed-note implementation take for that log's checkpoints."""
    raw = key.read_bytes() if key.exists() else b""
    private = b"PRIVATE KEY" in raw or len(raw) == 32
    public = Signer.load(key).public if private else load_public_key(key)
    print(public.pem(), end="", file=out)
    print(f"fingerprint: {public.fingerprint}", file=out)
    if origin is not None:
        vkey = Verifier(origin, ED25519_TYPE, public.raw).vkey
        print(f"log: {origin}", file=out)
        print(f"vkey: {vkey}", file=out)
    return 0


def _key_show(args: argparse.Namespace) -> int:
    origin = None
    if args.customer is not None:
        reader = Reader.open(_db(args))
        try:
            origin = tree_origin(reader.origin, args.customer)
        finally:
            reader.close()
    return key_show_command(key=_private_key(args), origin=origin)


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


def _export(args: argparse.Namespace) -> int:
    use_owner(args, "export")
    db = _db(args)
    _sign_now(args, db)
    return export_command(
        db=db, customer=args.customer, out_path=args.out, checkpoint_out=args.checkpoint_out
    )


def _prove(args: argparse.Namespace) -> int:
    db = _db(args)
    _sign_now(args, db)
    return prove_command(db=db, customer=args.customer, entry=args.entry, out_path=args.out)


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
    verify = subparsers.add_parser(
        "verify",
        help="verify the log, an exported bundle or a single-entry proof",
        epilog=EXIT_CODES,
    )
    verify.add_argument(
        "bundle", nargs="?", type=Path, help="bundle or .tlog-proof file ('-' for stdin)"
    )
    verify.add_argument(
        "--since", type=Path, help="a checkpoint file or an earlier bundle you kept"
    )
    verify.add_argument(
        "--witness", action="append", default=[], help="a witness's vkey (repeatable)"
    )
    verify.add_argument(
        "--witnesses-required",
        type=int,
        help="cosignatures each checkpoint needs from those witnesses (default: all named)",
    )
    add_config_option(verify)
    verify.add_argument("--db", type=Path, help="log database (default: from the configuration)")
    verify.add_argument("--customer", help="verify only this customer's chain")
    verify.add_argument("--key", type=Path, help="public key to trust (PEM or hex file)")
    verify.set_defaults(
        func=lambda a: verify_command(
            bundle=a.bundle,
            db=None if a.bundle else _db(a),
            customer=a.customer,
            key=a.key,
            since=a.since,
            witnesses=a.witness,
            witnesses_required=a.witnesses_required,
        )
    )

    export = subparsers.add_parser("export", help="export a customer's signed log bundle")
    add_config_option(export)
    export.add_argument("--customer", required=True)
    add_instances_option(export)
    export.add_argument("--db", type=Path, help="log database (default: from the configuration)")
    export.add_argument("--key", type=Path, help="private key to sign with when no gateway runs")
    export.add_argument("--out", type=Path, help="file to write (default stdout)")
    export.add_argument(
        "--checkpoint-out",
        type=Path,
        help="where to write the current checkpoint to keep (default: beside --out)",
    )
    export.set_defaults(func=_export)

    prove = subparsers.add_parser(
        "prove", help="write one entry's proof (c2sp.org/tlog-proof@v1) to hand on alone"
    )
    add_config_option(prove)
    prove.add_argument("--customer", required=True)
    prove.add_argument("--entry", type=int, required=True, help="the entry's index in the tree")
    prove.add_argument("--db", type=Path, help="log database (default: from the configuration)")
    prove.add_argument("--key", type=Path, help="private key to sign with when no gateway runs")
    prove.add_argument("--out", type=Path, help="file to write (default stdout)")
    prove.set_defaults(func=_prove)

    key = subparsers.add_parser("key", help="the log's signing key")
    key_sub = key.add_subparsers(dest="key_command", required=True)
    show = key_sub.add_parser("show", help="print the public key and its fingerprint")
    add_config_option(show)
    show.add_argument("--key", type=Path, help="key file (default: from the configuration)")
    show.add_argument(
        "--customer", help="also print the signed-note verifier key (vkey) of this customer's log"
    )
    show.add_argument("--db", type=Path, help="log database (default: from the configuration)")
    show.set_defaults(func=_key_show)
    generate = key_sub.add_parser("generate", help="create a new key file (mode 0600)")
    generate.add_argument("path", type=Path)
    generate.set_defaults(func=lambda a: key_generate_command(path=a.path))
    rotate = key_sub.add_parser("rotate", help="rotate the signing key (gateway stopped)")
    add_config_option(rotate)
    rotate.add_argument("--db", type=Path, help="log database (default: from the configuration)")
    rotate.add_argument("--key", type=Path, help="the current private key (default: configured)")
    rotate.add_argument("--new-key", type=Path, required=True, help="new key (created if absent)")
    rotate.set_defaults(func=_rotate)
