"""What `einblick run` says when it has started: one compact block for an installer at 2 am.

Printed on stderr (the journal under systemd) once every listener is up, so each line states
what is, not what was meant: the version, the box's name, where its files are, every listener,
the policies running and those that are not (file:line and why), the recipients, the signing
key's fingerprint, and where the logs go. ``render`` is pure; the gateway gathers the facts.
"""

from __future__ import annotations

from importlib.metadata import version as package_version

from pydantic import BaseModel

from gateway.config import Config

__all__ = ["PolicyLine", "StartFacts", "gather", "render"]


class PolicyLine(BaseModel):
    file: str
    customer: str | None
    version: str | None
    error: str | None  # set: the policy does not run; its customer's messages are withheld


class StartFacts(BaseModel):
    version: str
    instance: str
    config: str
    data_dir: str
    database: str
    device_listeners: list[str]  # "mqtt://127.0.0.1:1883 (plain, passwords)", ...
    broker: str  # "managed Mosquitto, log <path>" or "external broker at host:port"
    control_socket: str
    metrics: str | None  # "http://host:port/metrics" or None when off
    policies: list[PolicyLine]
    recipients: list[str]  # "oven-maker -> mqtts://host:8883"
    devices: int
    devices_not_admitted: int
    key_fingerprint: str


def gather(
    config: Config,
    policies: list[PolicyLine],
    *,
    devices: int,
    devices_not_admitted: int,
    key_fingerprint: str,
) -> StartFacts:
    """The facts from the running configuration; the gateway adds what only it knows."""
    broker = config.broker
    if broker.mode == "managed":
        listeners = [f"mqtt://{broker.listen}:{broker.port} (plain, device passwords)"]
        if broker.tls_port:
            auth = "client certificates" if broker.require_client_cert else "device passwords"
            listeners.append(f"mqtts://{broker.listen}:{broker.tls_port} (TLS, {auth})")
        where = f"managed Mosquitto in {config.broker_dir}"
    else:
        listeners = [f"devices publish to the external broker {broker.host}:{broker.port}"]
        where = f"external broker {broker.host}:{broker.port} (you run it)"
    metrics = config.metrics
    return StartFacts(
        version=package_version("einblick"),
        instance=config.instance,
        config=str(config.source),
        data_dir=str(config.data_path),
        database=str(config.database_path),
        device_listeners=listeners,
        broker=where,
        control_socket=str(config.control_socket),
        metrics=f"http://{metrics.host}:{metrics.port}/metrics" if metrics.enabled else None,
        policies=policies,
        recipients=[f"{r.name} -> {r.url}" for r in config.recipients],
        devices=devices,
        devices_not_admitted=devices_not_admitted,
        key_fingerprint=key_fingerprint,
    )


def render(facts: StartFacts) -> str:
    running = [p for p in facts.policies if p.error is None]
    broken = [p for p in facts.policies if p.error is not None]
    lines = [
        f"Einblick {facts.version} is running as instance {facts.instance}",
        f"  configuration  {facts.config}",
        f"  data           {facts.data_dir} (log {facts.database})",
        f"  devices        {'; '.join(facts.device_listeners)}",
        f"  broker         {facts.broker}",
        f"  control        {facts.control_socket} (einblick status, reload, consent, TUI)",
        f"  metrics        {facts.metrics or 'off (metrics.enabled: false)'}",
        f"  policies       {len(running)} running"
        + (
            f", {len(broken)} NOT RUNNING (their customers' messages are withheld)"
            if broken
            else ""
        ),
    ]
    lines.extend(f"    {p.customer}: {p.file} (version {(p.version or '-')[:12]})" for p in running)
    lines.extend(f"    NOT RUNNING {p.error}" for p in broken)
    lines.append(
        f"  recipients     {'; '.join(facts.recipients) if facts.recipients else 'none: nothing can leave'}"
    )
    lines.append(
        f"  registered     {facts.devices} device(s)"
        + (
            f", {facts.devices_not_admitted} NOT admitted (einblick status says why)"
            if facts.devices_not_admitted
            else ""
        )
    )
    lines.append(f"  signing key    fingerprint {facts.key_fingerprint}")
    lines.append(
        "  logs           this stderr (under systemd: journalctl -u einblick); "
        "decisions: einblick log / the TUI"
    )
    return "\n".join(lines)
