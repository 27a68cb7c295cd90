"""``einblick init``: a working starting configuration, keys and example policies in a directory.

DIR/einblick.yaml          the installer's configuration (edit recipients and ports)
DIR/policies/*.yaml        one policy per customer, copied from the examples
DIR/data/keys/signing.key  the gateway's Ed25519 signing key (owner-only)
DIR/data/keys/signing.pub  its public key, for customers who verify exports and receipts
DIR/data/tls/              the gateway's own CA and the TLS listener's certificate (gateway/tls.py)
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass
from pathlib import Path

from gateway.broker import write_private
from gateway.config import host_part
from gateway.errors import GatewayError
from gateway.keys import Signer
from gateway.tls import CertificateAuthority, TlsFiles

__all__ = ["EXAMPLE_RECIPIENTS", "InitOptions", "init_directory", "new_instance_name"]

EXAMPLES = Path(__file__).resolve().parent.parent / "policies" / "examples"

# The recipients the example policies name, with display names as a customer would read them.
EXAMPLE_RECIPIENTS = {
    "oven-maker": "Ofenbau Müller GmbH – Wartungscloud",
    "logistics": "RouteOne Logistikplattform",
    "energy-provider": "Stadtwerke Energiedienst",
}


@dataclass(frozen=True, slots=True)
class InitOptions:
    directory: Path
    instance: str | None = None  # None: new_instance_name()
    broker_port: int = 1883
    listen: str = "127.0.0.1"
    tls_port: int | None = None  # the TLS listener; None leaves it commented out
    hostnames: tuple[str, ...] = ()  # names and addresses devices use for this box (TLS SANs)
    upstream_url: str = "mqtt://127.0.0.1:1884"  # where the example recipients' broker is
    force: bool = False
    checkpoint_interval_s: float = 1.0


def new_instance_name() -> str:
    """A name for a new box: its hostname plus six random hex digits.

    Unique per box because two gateways with one name fight over their client id at a shared
    recipient broker (each connect kicks the other off, forever). The hostname makes it readable
    in a fleet; the random part makes it unique even when boxes share a hostname or were cloned
    from one image (cloned images often share /etc/machine-id as well). It is written into
    einblick.yaml, so it stays the same for the life of the box."""
    return f"{host_part()}-{secrets.token_hex(3)}"


def _existing_instance(config_path: Path) -> str | None:
    """The name an existing configuration gives this box: ``--force`` keeps it, because the log's
    checkpoints and the recipients' sessions already carry it."""
    try:
        text = config_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    found = re.search(r"^instance:\s*([a-z0-9][a-z0-9-]{0,62})\s*(?:#.*)?$", text, re.MULTILINE)
    return found.group(1) if found else None


def init_directory(options: InitOptions) -> Path:
    """Write the directory; refuses to overwrite an existing configuration unless forced."""
    directory = options.directory
    config_path = directory / "einblick.yaml"
    if config_path.exists() and not options.force:
        raise GatewayError(
            f"{config_path} exists already; pass --force to overwrite it (keys and the log are kept)"
        )
    instance = options.instance or _existing_instance(config_path) or new_instance_name()
    directory.mkdir(parents=True, exist_ok=True)
    policies = directory / "policies"
    policies.mkdir(exist_ok=True)
    for example in sorted(EXAMPLES.glob("*.yaml")):
        target = policies / example.name
        if not target.exists() or options.force:
            shutil.copyfile(example, target)
    data = directory / "data"
    data.mkdir(exist_ok=True)
    os.chmod(data, 0o700)
    key_path = data / "keys" / "signing.key"
    key_path.parent.mkdir(mode=0o700, exist_ok=True)
    signer = Signer.load(key_path) if key_path.exists() else Signer.generate(key_path)
    write_private(data / "keys" / "signing.pub", signer.public.pem())  # owner-only: see tls.py
    CertificateAuthority.create(
        TlsFiles(data / "tls"),
        instance=instance,
        hostnames=[options.listen, *options.hostnames, socket.gethostname()],
    )
    tls_port = (
        f"tls_port: {options.tls_port}       "
        if options.tls_port is not None
        else "# tls_port: 8883     "
    )
    recipients = "\n".join(
        f"  - name: {name}\n    display_name: {display!r}\n    url: {options.upstream_url}\n"
        for name, display in EXAMPLE_RECIPIENTS.items()
    )
    config_path.write_text(
        f"""# Einblick configuration. Paths are relative to this file. See README "Configuration".
einblick_config: 1
# This box's name: its log's origin and its client ids at the recipients' brokers. Unique per
# box (hostname + random part): two boxes with one name take each other's sessions forever.
instance: {instance}
data_dir: data
policies_dir: policies

broker:
  mode: managed            # Einblick runs Mosquitto; 'external' to use your own broker
  host: 127.0.0.1          # where the gateway itself connects
  port: {options.broker_port}
  listen: {options.listen}        # where devices connect; 0.0.0.0 for every interface
  {tls_port}# TLS with the gateway's own CA (data/tls/ca.crt); plain 'port' for trusted networks
  require_client_cert: false   # true: devices on the TLS port authenticate with 'device add --cert'
  report_denied_publish: false # true: count publishes under foreign topics (debug log, costs CPU)

# Who may receive data at all. A policy can only name recipients defined here.
recipients:
{recipients}
outbox:
  max_rows: 10000000       # all recipients together; each recipient's queue gets its share (see README)
  when_recipient_full: withhold  # a recipient's queue at its quota: record withheld; 'hold' pauses intake

pipeline:
  checkpoint_interval_s: {options.checkpoint_interval_s}

metrics:
  enabled: false           # Prometheus text format on 127.0.0.1:9464 when true
""",
        encoding="utf-8",
    )
    return config_path
