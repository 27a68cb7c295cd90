"""``einblick device add|list|remove|rotate``: credentials and topics for integrators.

A device the customer's policy declares (``devices:`` in the policy file) publishes under the
policy's topics: the snippet shows the policy's first topic (a ``{capture}`` level as
``<capture>``) and the registry gets no topics of its own for it, since the broker's ACL comes
from the policy. An undeclared device gets ``--topic`` or ``devices/<customer>/<id>/{stream}``.

Registration refuses what would let one device hurt another (gateway/devices/registry.py): a customer
no policy names (with the closest known names), a device id or human name the customer already
has, and topics outside the device's own prefix or overlapping another device's.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.commands.gateway_cmds import SubParsers, add_config_option, config_from
from gateway.config import Config
from gateway.devices.registry import (
    DEFAULT_TOPIC,
    RegisteredDevice,
    Registry,
    RegistryError,
    closest,
    document_claims,
    slug,
)
from gateway.devices.tls import CertificateAuthority, IssuedCertificate, TlsFiles
from gateway.operations import control_model as ops
from gateway.operations.control import ControlError, GatewayNotRunning, ask
from policies.errors import PolicyError
from policies.loader import load_policy
from policies.model import DeviceSpec, PolicyDocument

__all__ = ["connection_snippet", "declared_device", "register", "shown_topic"]


def register(sub: SubParsers) -> None:
    device = sub.add_parser("device", help="register devices and print their connection details")
    actions = device.add_subparsers(dest="device_action", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add", help="create credentials for a device and print how to connect it"
    )
    add_config_option(add)
    add.add_argument("--customer", required=True)
    add.add_argument("--name", required=True, help='the human name, e.g. "Backofen 1"')
    add.add_argument("--id", help="device id (default: from the name, e.g. backofen-1)")
    add.add_argument("--kind", default="sensor", help="device kind, e.g. oven, tracker, meter")
    add.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="PATTERN[=STREAM]",
        help="topic the device publishes under, if its policy does not declare it "
        "(default: devices/<customer>/<id>/{stream}); repeatable",
    )
    add.add_argument(
        "--command-topic",
        action="append",
        default=[],
        metavar="PATTERN",
        dest="command_topics",
        help="a topic the device may subscribe to for commands, under devices/<customer>/<id>/ "
        "(e.g. devices/<customer>/<id>/cmd/set); none by default: a device reads nothing",
    )
    add.add_argument(
        "--cert",
        action="store_true",
        help="authenticate with a client certificate from the gateway's CA instead of a password "
        "(needs broker.tls_port and broker.require_client_cert: true)",
    )
    add.add_argument(
        "--cert-dir",
        type=Path,
        help="where to write the device's certificate, key and the CA "
        "(default: <data_dir>/tls/devices/<customer>.<id>/, owner-only)",
    )
    add.set_defaults(func=_add)

    listing = actions.add_parser("list", help="registered devices")
    add_config_option(listing)
    listing.set_defaults(func=_list)

    remove = actions.add_parser("remove", help="revoke a device's credentials at once")
    add_config_option(remove)
    remove.add_argument("--customer", required=True)
    remove.add_argument("--id", required=True)
    remove.set_defaults(func=_remove)

    rotate = actions.add_parser(
        "rotate", help="new password (or certificate) for a device; the old one stops working"
    )
    add_config_option(rotate)
    rotate.add_argument("--customer", required=True)
    rotate.add_argument("--id", required=True)
    rotate.add_argument("--cert-dir", type=Path, help="where to write a new certificate")
    rotate.set_defaults(func=_rotate)


def _registry(config: Config) -> Registry:
    user = config.broker.gateway_username
    return Registry(config.data_path / "devices.json", reserved=(user, f"{user}-erasure"))


def _tell_gateway(config: Config, device: tuple[str, str], action: str) -> tuple[bool, str]:
    """Ask a running gateway to re-read the registry (password file, ACL and the policies that
    list registered devices; no restart) and say what it now does with ``device``, as it
    answered: nothing is claimed that the gateway did not confirm. False when the change did
    not take the effect ``action`` (add, rotate, remove) is meant to have."""
    customer, device_id = device
    try:
        fields = ops.ReloadDevicesRequest(customer=customer, device=device_id)
        reply = asyncio.run(ask(config.control_socket, ops.RELOAD_DEVICES, fields))
    except GatewayNotRunning:
        return True, "the gateway is not running; it picks the change up when it starts"
    except ControlError as exc:
        return False, (
            f"the change is saved in {config.data_path / 'devices.json'}, but the running gateway "
            f"did not apply it: {exc}; see 'einblick status', or restart the gateway"
        )
    effect = reply.device
    if effect is None:  # asked about a device, so answered about it; fail closed all the same
        return False, "the running gateway did not say what it does with the device"
    state = effect.state
    policy = f"policy {effect.policy} (version {str(effect.version)[:12]})"
    error = effect.error
    if action == "remove":
        if state == "removed":
            return (
                True,
                "the running gateway revoked its credentials and no longer decides its messages",
            )
        return True, (
            f"the running gateway revoked its credentials; {policy} still declares the device, "
            "so remove it there too if it is gone for good"
        )
    if state == "decided":
        return True, (
            f"the running gateway admitted it: its messages are decided under {policy} "
            "from the first one"
        )
    if state == "not_admitted":
        return False, f"the running gateway did NOT admit the device: {error}"
    if state == "no_tls_listener":
        return False, (
            "the running gateway has no TLS listener with client certificates (it started before "
            "broker.tls_port and broker.require_client_cert were set), so the broker refuses the "
            "certificate until the gateway restarts: systemctl restart einblick (a new listener "
            "needs a broker restart; 'einblick reload' cannot add one)"
        )
    if state == "policy_not_running":
        return False, (
            f"the broker accepts the device, but customer {customer!r} has no running policy, so "
            f"its messages are recorded as withheld (policy not loaded) until it loads: {error}"
        )
    return False, (
        f"the broker accepts the device, but the running {policy} does not list it, so its "
        "messages are withheld as from an unknown device; declare it under devices: there"
    )


def _policies(config: Config) -> list[tuple[Path, PolicyDocument]]:
    """Every policy file that loads; one that does not is reported on stderr and skipped (the
    gateway refuses it too)."""
    directory = config.policies_path
    found = []
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else ():
        try:
            found.append((path, load_policy(path)))
        except PolicyError as exc:
            print(f"note: skipping a policy that does not load: {exc}", file=sys.stderr)
    return found


def declared_device(config: Config, customer: str, device: str) -> DeviceSpec | None:
    """The device as the customer's policy file declares it, or None.

    Every ``*.yaml`` in the policies directory is read (file names need not match customers);
    a file that does not load is reported on stderr and skipped: the gateway refuses it too.
    """
    for _, document in _policies(config):
        if document.customer != customer:
            continue
        for spec in document.devices:
            if spec.id == device:
                return spec
    return None


def shown_topic(pattern: str) -> str:
    """A policy topic pattern as the integrator reads it: ``owntracks/{user}/van-7`` ->
    ``owntracks/<user>/van-7`` (``+`` -> ``<any>``, ``#`` -> ``<any/…>``)."""
    levels = []
    for level in pattern.split("/"):
        if level.startswith("{") and level.endswith("}"):
            levels.append(f"<{level[1:-1]}>")
        elif level == "+":
            levels.append("<any>")
        elif level == "#":
            levels.append("<any/…>")
        else:
            levels.append(level)
    return "/".join(levels)


def _policy_topic(config: Config, customer: str, device: str) -> str | None:
    declared = declared_device(config, customer, device)
    return None if declared is None else shown_topic(declared.topics[0].pattern)


def _add(args: argparse.Namespace) -> int:
    config = config_from(args)
    registry = _registry(config)
    device_id = args.id or slug(args.name)
    documents = _policies(config)
    customers = {document.customer for _, document in documents}
    if args.customer not in customers:
        known = ", ".join(sorted(customers)) or f"none: no policy in {config.policies_path} loads"
        raise RegistryError(
            f"unknown customer {args.customer!r}{closest(args.customer, customers)}; a customer "
            f"exists once its policy is in {config.policies_path} (known: {known})"
        )
    claims = [c for path, document in documents for c in document_claims(str(path), document)]
    declared = next(
        (
            spec
            for _, document in documents
            if document.customer == args.customer
            for spec in document.devices
            if spec.id == device_id
        ),
        None,
    )
    topics: list[tuple[str, str]] = []
    for spec in args.topic:
        pattern, _, stream = spec.partition("=")
        topics.append((pattern, stream or "telemetry"))
    if declared is not None and topics:
        raise RegistryError(
            f"device {device_id!r} of customer {args.customer!r} is declared in its policy with "
            f"topics {', '.join(t.pattern for t in declared.topics)}; drop --topic (the policy "
            "decides where it publishes) or change the policy"
        )
    same = [d for d in registry.devices() if d.customer == args.customer]
    for other in same:
        if other.device == device_id:
            raise RegistryError(
                f"customer {args.customer!r} already has a device with id {device_id!r} "
                f"({other.name!r}); choose another --id, or 'einblick device rotate' for new "
                "credentials"
            )
        if other.name.casefold() == args.name.casefold():
            raise RegistryError(
                f"customer {args.customer!r} already has a device named {other.name!r} "
                f"(id {other.device!r}); give this one a name the customer can tell apart"
            )
    if not topics and declared is None:
        topics = [(DEFAULT_TOPIC.format(customer=args.customer, device=device_id), "telemetry")]
    if args.cert and not (config.broker.tls_port and config.broker.require_client_cert):
        raise RegistryError(
            f"{config.source}: --cert needs the TLS listener with client certificates: "
            "set broker.tls_port (e.g. 8883) and broker.require_client_cert: true"
        )
    entry, password = registry.add(
        args.customer,
        device_id,
        name=args.name,
        kind=args.kind,
        topics=tuple(topics),
        commands=tuple(args.command_topics),
        certificate=args.cert,
        claims=claims,
    )
    issued = None
    if args.cert:
        issued = _ca(config).issue_client(entry.username, args.cert_dir)
        entry = registry.set_certificate(entry.customer, entry.device, issued.serial)
    registry.save()
    applied, note = _tell_gateway(config, entry.key, "add")
    topic = shown_topic(declared.topics[0].pattern) if declared is not None else None
    sys.stdout.write(connection_snippet(config, entry, password, issued, topic=topic))
    print(f"\n({note})", file=sys.stderr)
    return 0 if applied else 1


def _ca(config: Config) -> CertificateAuthority:
    return CertificateAuthority.load(TlsFiles(config.data_path / "tls"))


def connection_snippet(
    config: Config,
    device: RegisteredDevice,
    password: str | None,
    issued: IssuedCertificate | None = None,
    *,
    topic: str | None = None,
) -> str:
    """What the integrator pastes into the device: a password or a certificate bundle.

    ``topic`` is the policy's topic for a device the policy declares (see ``shown_topic``);
    otherwise the device's registered topic is shown."""
    broker = config.broker
    host = broker.listen if broker.listen not in {"0.0.0.0", "::"} else "<this box's address>"
    if topic is None:
        topic = (
            device.topics[0][0].replace("{stream}", "telemetry")
            if device.topics
            else "<a topic from the policy>"
        )
    if issued is not None:
        return _certificate_snippet(config, device, issued, host, topic)
    assert password is not None
    return f"""Device {device.name!r} ({device.customer}/{device.device}) is registered.
Give the integrator these details; the password is shown only now.

  host:      {host}
  port:      {broker.port}
  TLS:       {"port " + str(broker.tls_port) + " with the gateway's CA (data/tls/ca.crt)" if broker.tls_port else "no (plain MQTT on a trusted network)"}
  username:  {device.username}
  password:  {password}
  client id: {device.username}
  publish:   {topic}    (QoS 1; only under this device's own topics)

mosquitto_pub:
  mosquitto_pub -h {host} -p {broker.port} -q 1 -i '{device.username}' -u '{device.username}' -P '{password}' \\
    -t '{topic}' -m '{{"temperature": 21.5}}'

Python (paho-mqtt 2.x):
  import paho.mqtt.client as mqtt
  c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="{device.username}")
  c.username_pw_set("{device.username}", "{password}")
  c.connect("{host}", {broker.port})
  c.loop_start()
  c.publish("{topic}", '{{"temperature": 21.5}}', qos=1).wait_for_publish()
"""


def _certificate_snippet(
    config: Config, device: RegisteredDevice, issued: IssuedCertificate, host: str, topic: str
) -> str:
    port = config.broker.tls_port
    ca, cert, key = issued.ca_file, issued.cert_file, issued.key_file
    return f"""Device {device.name!r} ({device.customer}/{device.device}) is registered.
It authenticates with a client certificate signed by this gateway's CA (valid until {issued.not_after:%Y-%m-%d}).
Copy the three files into the device; the key is its whole identity (then delete it from {key.parent}).

  host:      {host}
  port:      {port}   (TLS; the certificate is the login, no password)
  CA:        {ca}
  cert:      {cert}
  key:       {key}
  username:  {device.username}   (taken from the certificate)
  client id: {device.username}
  publish:   {topic}    (QoS 1; only under this device's own topics)

mosquitto_pub:
  mosquitto_pub -h {host} -p {port} -q 1 -i '{device.username}' \\
    --cafile '{ca}' --cert '{cert}' --key '{key}' \\
    -t '{topic}' -m '{{"temperature": 21.5}}'

Python (paho-mqtt 2.x):
  import paho.mqtt.client as mqtt
  c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="{device.username}")
  c.tls_set(ca_certs="{ca}", certfile="{cert}", keyfile="{key}")
  c.connect("{host}", {port})
  c.loop_start()
  c.publish("{topic}", '{{"temperature": 21.5}}', qos=1).wait_for_publish()
"""


def _list(args: argparse.Namespace) -> int:
    config = config_from(args)
    for device in _registry(config).devices():
        topics = ", ".join(p for p, _ in device.topics) or "(from the policy)"
        auth = "password" if device.password_hash else f"certificate {device.cert_serial or '?'}"
        print(
            f"{device.customer}/{device.device}\t{device.name}\t{device.kind}\t{device.username}\t{auth}\t{topics}"
        )
    return 0


def _remove(args: argparse.Namespace) -> int:
    config = config_from(args)
    registry = _registry(config)
    removed = registry.remove(args.customer, args.id)
    if removed.cert_serial is not None:
        _ca(config).revoke(
            [int(removed.cert_serial, 16)]
        )  # the CRL refuses it at the next handshake
    registry.save()
    applied, note = _tell_gateway(config, removed.key, "remove")
    print(f"removed {removed.customer}/{removed.device}; {note}", file=sys.stderr)
    return 0 if applied else 1


def _rotate(args: argparse.Namespace) -> int:
    config = config_from(args)
    registry = _registry(config)
    current = registry.get(args.customer, args.id)
    issued = None
    password: str | None = None
    if current.cert_serial is not None:
        ca = _ca(config)
        issued = ca.issue_client(current.username, args.cert_dir)
        entry = registry.set_certificate(current.customer, current.device, issued.serial)
        ca.revoke([int(current.cert_serial, 16)])
    else:
        entry, password = registry.rotate(args.customer, args.id)
    registry.save()
    applied, note = _tell_gateway(config, entry.key, "rotate")
    topic = _policy_topic(config, entry.customer, entry.device)
    sys.stdout.write(connection_snippet(config, entry, password, issued, topic=topic))
    print(f"\n({note})", file=sys.stderr)
    return 0 if applied else 1
