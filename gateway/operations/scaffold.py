"""``einblick init``: a working starting configuration, keys and example policies in a directory.

DIR/einblick.yaml          the installer's configuration (edit recipients and ports)
DIR/policies/*.yaml        one policy per customer, copied from the examples
DIR/data/keys/signing.key  the gateway's Ed25519 signing key (owner-only)
DIR/data/keys/signing.pub  its public key, for customers who verify exports and receipts
DIR/data/tls/              the gateway's own CA and the TLS listener's certificate (gateway/devices/tls.py)
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
from dataclasses import dataclass, field
from pathlib import Path

from gateway.config import Config, host_part, load_config
from gateway.devices.broker_files import write_private
from gateway.devices.tls import CertificateAuthority, TlsFiles
from gateway.errors import ConfigError, GatewayError
from gateway.log.keys import Signer
from policies.examples import EXAMPLES, example_path

__all__ = [
    "EXAMPLE_RECIPIENTS",
    "InitOptions",
    "InitResult",
    "init_directory",
    "initialise",
    "new_instance_name",
]


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


@dataclass(slots=True)
class InitResult:
    """What ``init`` did: the configuration it wrote, and for ``--force`` what it renewed and
    what it kept, one line each, as the installer reads them."""

    config_path: Path
    renewed: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def init_directory(options: InitOptions) -> Path:
    """Write the directory; refuses to overwrite an existing configuration unless forced."""
    return initialise(options).config_path


def _previous(config_path: Path) -> Config | None:
    try:
        return load_config(config_path) if config_path.exists() else None
    except ConfigError:
        return None  # a broken file is replaced; nothing of it can be compared


def initialise(options: InitOptions) -> InitResult:
    """Write the directory. With ``force`` over an existing one: renew what the options change
    (the listener certificate for new names, the ports in einblick.yaml), keep the rest (the
    signing key, the log, the CA, registered devices, policy files), and say which is which."""
    directory = options.directory
    config_path = directory / "einblick.yaml"
    if config_path.exists() and not options.force:
        raise GatewayError(
            f"{config_path} exists already; pass --force to overwrite it (keys and the log are kept)"
        )
    previous = _previous(config_path)
    result = InitResult(config_path)
    instance = options.instance or _existing_instance(config_path) or new_instance_name()
    directory.mkdir(parents=True, exist_ok=True)
    policies = directory / "policies"
    policies.mkdir(exist_ok=True)
    kept_policies = []
    for example in sorted(example_path(name) for name in EXAMPLES):
        target = policies / example.name
        if target.exists():  # the installer may have adapted it: never overwritten
            kept_policies.append(target.name)
        else:
            shutil.copyfile(example, target)
    data = directory / "data"
    data.mkdir(exist_ok=True)
    os.chmod(data, 0o700)
    key_path = data / "keys" / "signing.key"
    key_path.parent.mkdir(mode=0o700, exist_ok=True)
    had_key = key_path.exists()
    signer = Signer.load(key_path) if had_key else Signer.generate(key_path)
    write_private(data / "keys" / "signing.pub", signer.public.pem())  # owner-only: see tls.py
    tls = TlsFiles(data / "tls")
    had_ca = tls.ca_cert.exists() and tls.ca_key.exists()
    hostnames = [options.listen, *options.hostnames, socket.gethostname()]
    ca = CertificateAuthority.create(tls, instance=instance, hostnames=hostnames)
    if previous is not None:
        current = ca.server_names()
        wanted = CertificateAuthority.names_for(hostnames)
        if current is not None and current != wanted:
            ca.issue_server(hostnames)
            result.renewed.append(
                f"listener certificate {tls.server_cert}: now for {', '.join(sorted(wanted))} "
                f"(was {', '.join(sorted(current))}); signed by the same CA, so devices keep "
                "trusting it; restart the gateway to serve it"
            )
        broker = previous.broker
        for what, was, now in (
            ("broker.port", broker.port, options.broker_port),
            ("broker.listen", broker.listen, options.listen),
            ("broker.tls_port", broker.tls_port, options.tls_port),
        ):
            if was != now:
                result.renewed.append(
                    f"{what} in {config_path}: {was} -> {now}; devices must be told; restart "
                    "the gateway to listen there"
                )
        result.kept.append(f"instance name {instance} (the log's origin)")
        if had_key:
            result.kept.append(f"signing key {key_path} (fingerprint {signer.fingerprint})")
        database = previous.database_path
        if database.exists():
            result.kept.append(f"the log {database}")
        if had_ca:
            result.kept.append(f"the CA {tls.ca_cert} (devices' certificates stay valid)")
        if (data / "devices.json").exists():
            result.kept.append(f"registered devices {data / 'devices.json'}")
        if kept_policies:
            result.kept.append(f"policies {', '.join(kept_policies)} in {policies} (unchanged)")
    if config_path.exists():
        backup = config_path.with_name(config_path.name + ".bak")
        shutil.copyfile(config_path, backup)
        os.chmod(backup, 0o600)
        result.renewed.append(
            f"{config_path} written from the template; the previous one is {backup}: copy "
            "your recipients and limits back from it, then 'einblick reload'"
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
    return result
