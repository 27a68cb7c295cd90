"""``einblick customer invite | revoke | list | add-key`` and ``einblick portal``: customers'
own access to their data (issue #16).

``invite`` prints a one-time link (and its code) the customer opens to set their own password;
the installer never sees it. ``revoke`` ends a customer's (or one login's) access and sessions at
once. ``add-key`` writes a restricted ``authorized_keys`` line for the optional SSH path: that
key can run only that customer's view. ``portal`` runs the portal in the foreground (``einblick
run`` starts it by itself when ``portal:`` is configured).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import socket
import sys
from datetime import UTC, datetime
from pathlib import Path

from gateway.commands.gateway_cmds import SubParsers, add_config_option, config_from
from gateway.config import Config
from gateway.errors import GatewayError

__all__ = ["PORTAL_NICE", "authorized_keys_line", "register"]

PORTAL_NICE = 10  # added to the portal process's niceness (lower CPU priority than forwarding)

SSH_KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)


class CustomerError(GatewayError):
    """A customer-access command cannot do what was asked."""


def register(sub: SubParsers) -> None:
    customer = sub.add_parser("customer", help="customers' own access: invite, revoke, SSH key")
    actions = customer.add_subparsers(dest="customer_action", metavar="ACTION", required=True)

    invite = actions.add_parser("invite", help="print a one-time link for a customer's login")
    add_config_option(invite)
    invite.add_argument("--customer", required=True)
    invite.add_argument("--name", required=True, help="the person invited (shown to them)")
    invite.add_argument("--hours", type=int, help="valid for (default: portal.invitation_hours)")
    invite.set_defaults(func=_invite)

    revoke = actions.add_parser("revoke", help="end a customer's portal access and sessions")
    add_config_option(revoke)
    revoke.add_argument("--customer", required=True)
    revoke.add_argument("--login", help="only this login (default: all of the customer's)")
    revoke.set_defaults(func=_revoke)

    listing = actions.add_parser("list", help="the portal's logins and pending erasure requests")
    add_config_option(listing)
    listing.add_argument("--customer")
    listing.set_defaults(func=_list)

    add_key = actions.add_parser(
        "add-key", help="let an SSH key open only this customer's terminal view"
    )
    add_config_option(add_key)
    add_key.add_argument("--customer", required=True)
    add_key.add_argument("key", type=Path, help="the customer's public key file (key.pub)")
    add_key.add_argument(
        "--authorized-keys",
        type=Path,
        default=Path.home() / ".ssh" / "authorized_keys",
        help="file to append to (default: ~/.ssh/authorized_keys of this user)",
    )
    add_key.set_defaults(func=_add_key)

    portal = sub.add_parser("portal", help="run the customers' portal (HTTPS) in the foreground")
    add_config_option(portal)
    portal.set_defaults(func=_portal)


def _store(config: Config):  # type: ignore[no-untyped-def]
    from gateway.operations.portal.store import PortalStore

    return PortalStore(config.portal_db)


def _known_customer(config: Config, customer: str) -> None:
    from gateway.commands.rights import load_policies

    known = sorted(p.customer for p in load_policies(config))
    if customer not in known:
        raise CustomerError(
            f"no policy for customer {customer!r} in {config.policies_path} "
            f"(customers: {', '.join(known) or 'none'}); invite the customer once their policy loads"
        )


def _base_url(config: Config) -> str:
    from gateway.config import PortalConfig

    settings = config.portal or PortalConfig()
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = settings.host if settings.host not in ("0.0.0.0", "::") else socket.getfqdn()
    scheme = "http" if settings.plain_http else "https"
    return f"{scheme}://{host}:{settings.port}"


def _invite(args: argparse.Namespace) -> int:
    from gateway.config import PortalConfig

    config = config_from(args)
    _known_customer(config, args.customer)
    if config.portal is None:
        print(
            f"einblick: note: no 'portal:' section in {config.source}: the link works once the "
            "portal runs (add 'portal: {}' and restart, or run 'einblick portal')",
            file=sys.stderr,
        )
    hours = args.hours or (config.portal or PortalConfig()).invitation_hours
    store = _store(config)
    try:
        token, expires = store.invite(args.customer, args.name, hours * 3600.0)
    finally:
        store.close()
    until = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M UTC")
    print(f"{_base_url(config)}/invite/{token}")
    print(
        f"one-time link for {args.name} (customer {args.customer}), valid until {until}; "
        f"the code alone: {token}\n"
        "Hand it over on a channel only they read: whoever opens it first sets the password.",
        file=sys.stderr,
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    config = config_from(args)
    store = _store(config)
    try:
        accounts, sessions, invitations = store.revoke(args.customer, args.login)
    finally:
        store.close()
    print(
        f"revoked {accounts} login(s) of {args.customer}, ended {sessions} session(s), "
        f"cancelled {invitations} open invitation(s); effective at the portal's next request"
    )
    return 0 if accounts or invitations or sessions else 1


def _list(args: argparse.Namespace) -> int:
    config = config_from(args)
    store = _store(config)
    try:
        accounts = store.accounts(args.customer)
        erasures = store.erasure_requests(args.customer)
    finally:
        store.close()
    for a in accounts:
        state = "revoked" if a.revoked else ("two-factor" if a.has_totp else "password")
        print(f"{a.customer:<20} {a.login:<24} {state:<10} {a.name}")
    for e in erasures:
        at = datetime.fromtimestamp(e.at, UTC).strftime("%Y-%m-%d %H:%M UTC")
        print(
            f"erasure request {e.id}: {e.customer} at {at} by {e.by!r} (login {e.login}); "
            f"carry it out with: einblick forget --customer {e.customer} --by {shlex.quote(e.by)}"
        )
    if not accounts and not erasures:
        print("no portal logins")
    return 0


def authorized_keys_line(key_text: str, customer: str, config_path: Path) -> str:
    """The ``authorized_keys`` line that lets this key run only ``customer``'s terminal view:
    a forced command (whatever the client asks to run), and ``restrict`` (no port, agent or X11
    forwarding, no ~/.ssh/rc; a terminal is allowed back with ``pty``, the TUI needs one)."""
    from cryptography.hazmat.primitives.serialization import load_ssh_public_key

    parts = key_text.strip().split()
    if len(key_text.strip().splitlines()) != 1 or len(parts) < 2:
        raise CustomerError("expected one public key line: '<type> <base64> [comment]'")
    kind, blob = parts[0], parts[1]
    if kind not in SSH_KEY_TYPES:
        raise CustomerError(
            f"unknown key type {kind!r} (expected one of {', '.join(SSH_KEY_TYPES)})"
        )
    if not kind.startswith("sk-"):
        try:
            load_ssh_public_key(f"{kind} {blob}".encode("ascii"))
        except (ValueError, UnicodeEncodeError) as exc:
            raise CustomerError(f"not a valid {kind} public key: {exc}") from exc
    if not customer.replace("-", "").replace("_", "").isalnum():
        raise CustomerError(f"customer {customer!r}: letters, digits, '-' and '_' only")
    command = (
        f"einblick tui --config {shlex.quote(str(config_path.resolve()))} "
        f"--customer {shlex.quote(customer)}"
    )
    # Inside command="…" a double quote would end the option: the path must not carry one.
    if '"' in command or "\\" in command:
        raise CustomerError(
            f"{config_path}: a path with '\"' or '\\' cannot go into an authorized_keys line"
        )
    return f'command="{command}",restrict,pty {kind} {blob} einblick-customer-{customer}'


def _add_key(args: argparse.Namespace) -> int:
    config = config_from(args)
    _known_customer(config, args.customer)
    try:
        text = args.key.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise CustomerError(f"{args.key}: cannot read the public key ({exc})") from exc
    line = authorized_keys_line(text, args.customer, config.source)
    target: Path = args.authorized_keys
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as handle:
        handle.write(line + "\n")
    print(line)
    print(f"appended to {target}", file=sys.stderr)
    return 0


def _portal(args: argparse.Namespace) -> int:
    from gateway.operations.portal.service import serve

    config = config_from(args)
    # The portal yields the CPU to forwarding: on a busy box the kernel runs the gateway first
    # (a customer's page may take longer; a message may not). Measured: gateway/bench/portal.py.
    os.nice(PORTAL_NICE)
    try:
        asyncio.run(
            serve(
                config, ready=lambda where: print(f"portal: {where}", file=sys.stderr, flush=True)
            )
        )
    except KeyboardInterrupt:
        return 0
    return 0
