"""The installer's configuration: one YAML file, validated, with errors that name key and line.

    einblick_config: 1
    instance: bakery-box-3f9a1c       # names this box's log chains and its client ids upstream
    data_dir: data                    # relative paths are relative to this file
    policies_dir: policies            # one <customer>.yaml per customer
    broker:
      mode: managed                   # managed: Einblick runs Mosquitto; external: you run one
      host: 127.0.0.1
      port: 1883
    recipients:
      - name: oven-maker
        display_name: Ofenbau Müller GmbH – Wartungscloud
        url: mqtts://maintenance.example.com:8883
        username: bakery-17
        password_file: secrets/oven-maker.password
    outbox:
      max_rows: 10000000              # all queues together; each recipient gets max_rows ÷ recipients
      when_recipient_full: withhold   # a recipient's queue at its quota: withhold, or hold intake
    retention:                        # the box's default; a policy's retention: overrides it
      content_days: 365               # payloads and topics older are deleted (unset: kept)
      entries_years: 10               # entries older are dropped behind a signed anchor
    witnesses:                        # countersign every checkpoint (einblick witness serve)
      - name: verband
        url: https://witness.example.org:7380
        vkey: witness.example.org/w1+5e1c2a9b+BM…   # printed by 'einblick witness init'

Paths in the file are resolved against the file's directory, so a configuration directory can be
moved as a whole.
"""

from __future__ import annotations

import hashlib
import re
import socket
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.cluster import ClusterConfig
from gateway.errors import ConfigError, LogError
from policies.model import RetentionSpec

__all__ = [
    "PACKET_OVERHEAD",
    "BrokerConfig",
    "BrokerLimits",
    "Config",
    "MetricsConfig",
    "OutboxConfig",
    "PipelineConfig",
    "PortalConfig",
    "RecipientConfig",
    "TlsConfig",
    "WitnessConfig",
    "box_instance",
    "host_part",
    "load_config",
]

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
MAX_CONFIG_BYTES = 1 << 20
MACHINE_ID_FILES = (Path("/etc/machine-id"), Path("/var/lib/dbus/machine-id"))


def host_part() -> str:
    """This box's hostname as an instance-name prefix: lower case, [a-z0-9-], at most 40."""
    slug = re.sub(r"[^a-z0-9]+", "-", socket.gethostname().lower()).strip("-")[:40].strip("-")
    return slug or "edge"


def box_instance() -> str:
    """The instance name of a configuration that names none: unique per box and stable.

    The instance is the client id upstream (``einblick-<instance>-<recipient>``) and the origin
    of the log's checkpoints. A fixed default (it was ``edge-01``) made two boxes publishing to
    one recipient broker take each other's session over and over, each reconnect kicking the
    other off. It must also stay the same across restarts (a persistent session and the
    checkpoint origin hang on it), so it comes from the machine id, not from chance; a box
    without one falls back to its hostname alone."""
    for path in MACHINE_ID_FILES:
        try:
            machine = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError):
            continue
        if machine:
            return f"{host_part()}-{hashlib.sha256(machine.encode()).hexdigest()[:6]}"
    return host_part()


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsConfig(_Model):
    ca_file: Path | None = None  # None: the system's trust store
    cert_file: Path | None = None  # client certificate, when the upstream wants one
    key_file: Path | None = None
    # Turning verification off is sometimes needed on a test bench; it is never the default.
    insecure_skip_verify: bool = False


class RecipientConfig(_Model):
    name: str
    display_name: str
    url: str  # mqtt://host:port or mqtts://host:port
    username: str | None = None
    password_file: Path | None = None
    client_id: str | None = None
    tls: TlsConfig = TlsConfig()
    topic_prefix: str = ""  # prepended to every topic the policy's template produces
    qos: Literal[0, 1] = 1
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    # What happens when this recipient's queue is at its quota; None: outbox.when_recipient_full.
    when_queue_full: Literal["withhold", "hold"] | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"must be lower-case letters, digits and '-', found {value!r}")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"mqtt", "mqtts"} or not parts.hostname:
            raise ValueError(f"expected mqtt://host:port or mqtts://host:port, found {value!r}")
        return value

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        parts = urlsplit(self.url)
        return parts.port or (8883 if parts.scheme == "mqtts" else 1883)

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"


class BrokerLimits(_Model):
    """Mosquitto's resource limits (managed mode), written into mosquitto.conf.

    Mosquitto 2.0 applies the queue and in-flight limits to every client alike; the client that
    needs them large is the gateway's own persistent session, which holds devices' messages while
    the gateway is stopped or its outbox is full. Devices cannot use them to queue for
    themselves: they have no read right (see gateway/devices/broker.py), so nothing is ever queued for a
    device. Reaching a queue limit makes Mosquitto drop further messages for the gateway's session
    after acknowledging them to the device; Einblick counts each such episode ("queue_full" in
    ``einblick status`` and the metrics), so size the limits for the longest outage you plan for.
    """

    # Messages queued for one client above those in flight: about a day of 10 devices at 1 msg/s.
    max_queued_messages: int = Field(default=1_000_000, ge=1000)
    # Bytes queued for one client. Mosquitto keeps its queue in memory: this bounds the backlog's
    # share of RAM on an edge box (a million 500-byte messages fit).
    max_queued_bytes: int = Field(default=512 * 1024 * 1024, ge=1024 * 1024)
    # QoS 1 messages sent to one client before its acknowledgements: the gateway acknowledges
    # only after its commit, so this is the writer's batch window.
    max_inflight_messages: int = Field(default=1000, ge=1, le=65535)
    # Largest MQTT packet Mosquitto accepts from anyone (bigger: the client is disconnected,
    # nothing is acknowledged). None: pipeline.max_payload_bytes + PACKET_OVERHEAD, so a body the
    # gateway will not inspect but a little larger still reaches it and is withheld with a
    # logged reason, while the shared queue (max_queued_bytes) holds thousands of maximal
    # messages rather than 32 of 16 MiB. Set it only to accept more than the pipeline inspects.
    max_packet_bytes: int | None = Field(default=None, ge=1024, le=268_435_460)
    # Mosquitto's heap limit, the backstop for what the queue limit does not count (packets being
    # received, retained messages, sessions): over it, a publisher is disconnected without an
    # acknowledgement. 0: no limit. Must leave room above max_queued_bytes (checked in Config,
    # which knows the packet size the pipeline implies).
    memory_limit_bytes: int = Field(default=1024 * 1024 * 1024, ge=0)
    # How often the gateway clears retained messages on the device broker (gateway/devices/retained.py):
    # retained storage holds at most what devices publish in about this long.
    retained_sweep_s: float = Field(default=1.0, gt=0, le=60)


# An MQTT PUBLISH around its payload: fixed header (5), topic (2 + up to 65,535), packet id (2),
# and room for MQTT 5 properties.
PACKET_OVERHEAD = 64 * 1024 + 1024


DEVICE_USERNAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}\.[a-z0-9][a-z0-9-]{0,62}$")


class BrokerConfig(_Model):
    mode: Literal["managed", "external"] = "managed"
    host: str = "127.0.0.1"
    port: int = Field(default=1883, ge=1, le=65535)
    # Managed mode: where devices connect from. 127.0.0.1 keeps the demo private; an edge box
    # listens on its LAN address or 0.0.0.0.
    listen: str = "127.0.0.1"
    tls_port: int | None = Field(default=None, ge=1, le=65535)
    # On the TLS listener, devices must present a certificate from the gateway's CA
    # ('einblick device add --cert'); its common name is their broker username.
    require_client_cert: bool = False
    # Count PUBLISHes the ACL denied (a device writing under another device's topic). Mosquitto
    # logs them only at debug level, a few lines per message through the gateway: off by default,
    # for commissioning and audits (wrong passwords and refused certificates are always counted).
    report_denied_publish: bool = False
    mosquitto: Path | None = None  # None: found on PATH or in /usr/sbin
    # Managed mode: the gateway's broker user, and its client id (Mosquitto makes every client
    # id the username). Device usernames are always "<customer>.<device>"; a name without that
    # shape can never be claimed by registering a device.
    gateway_username: str = "einblick-gateway"
    gateway_password_file: Path | None = None  # external mode: the gateway's own credentials
    client_id: str = "einblick-gateway"  # external mode only; managed mode uses gateway_username
    limits: BrokerLimits = BrokerLimits()

    @model_validator(mode="after")
    def _unclaimable(self) -> BrokerConfig:
        if self.mode == "managed" and DEVICE_USERNAME.match(self.gateway_username):
            raise ValueError(
                f"gateway_username {self.gateway_username!r} has the shape of a device username "
                "(<customer>.<device>): a device registered under that name could take over the "
                "gateway's session; choose a name without a dot, e.g. einblick-gateway"
            )
        return self


class OutboxConfig(_Model):
    # When this many rows wait to be sent, the gateway stops acknowledging device messages: the
    # broker keeps them (QoS 1, persistent session) until the upstreams drain the outbox.
    # Ten million by default because each recipient's row quota is a share of it: with three
    # recipients one may be down ~9 h at 100 messages/s before its releases are withheld; the
    # bytes quota (a share of the free disk) binds first on a small disk.
    max_rows: int = Field(default=10_000_000, ge=10)
    # Each recipient's queue has a quota (gateway/messages/quota.py says how it is sized) so that one
    # unreachable recipient cannot reach max_rows and pause intake for everyone.
    # Rows per recipient; None: max_rows ÷ number of recipients.
    recipient_max_rows: int | None = Field(default=None, ge=1)
    # Bytes per recipient; None: disk_share × (free disk + outbox) ÷ number of recipients.
    recipient_max_bytes: int | None = Field(default=None, ge=1024)
    disk_share: float = Field(default=0.5, gt=0, le=0.9)
    # At the quota: 'withhold' records that recipient's release as withheld (reason
    # recipient_queue_full) and goes on; 'hold' stops taking messages from every device until
    # the queue drains (one MQTT session carries all devices, so a hold cannot be per customer).
    when_recipient_full: Literal["withhold", "hold"] = "withhold"
    # Sent rows are kept this long so the TUI can show them, then pruned.
    keep_sent_s: int = Field(default=3600, ge=0)


class RetentionConfig(RetentionSpec):
    """The box's default retention (gateway/rights/retention.py); a policy's ``retention`` overrides it
    key by key for its customer. Unset keys: kept until erased (einblick forget)."""

    # How often the running gateway applies retention (an offloaded store job; an hour is
    # fine-grained enough for limits counted in days and years).
    check_every_s: float = Field(default=3600.0, gt=0, le=86_400)


class DiskConfig(_Model):
    """The disk projection in status, the TUI and the metrics (gateway/operations/disk.py)."""

    sample_every_s: float = Field(default=60.0, gt=0, le=3600)
    window_h: float = Field(default=24.0, gt=0, le=24 * 31)  # the rate is taken over this
    warn_days: float = Field(default=30.0, gt=0)  # warn when full sooner than this
    critical_days: float = Field(default=7.0, gt=0)
    warn_free_percent: float = Field(default=10.0, ge=0, le=100)


class PipelineConfig(_Model):
    max_payload_bytes: int = Field(default=256 * 1024, ge=64)
    queue: int = Field(default=2000, ge=1)  # messages received but not yet committed
    # Messages per transaction at most. 1000 let one batch hold the event loop for a second on a
    # busy box and starved the forwarders: draining a backlog, Einblick forwarded ~200 msg/s at
    # ~980 µs CPU each while its outbox grew; at 100, 1,363 msg/s at 225 µs (README, "Speed").
    batch_max: int = Field(default=100, ge=1)
    checkpoint_interval_s: float = Field(default=1.0, gt=0, le=60)
    # Flood control per device: sustained messages per second, and the burst allowed above it.
    device_max_rate: float = Field(default=100.0, gt=0)
    device_burst: int = Field(default=500, ge=1)


class MetricsConfig(_Model):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=9464, ge=1, le=65535)


LOOPBACK = ("127.0.0.1", "::1", "localhost")


class PortalConfig(_Model):
    """The customers' portal (``einblick portal``, gateway/operations/portal): present means on.

    HTTPS with the box's listener certificate (``<data_dir>/tls/server.crt``, from the box's CA)
    unless ``cert_file``/``key_file`` name the installer's own; plain HTTP only on loopback
    (behind a reverse proxy that terminates TLS)."""

    host: str = "0.0.0.0"
    port: int = Field(default=8443, ge=1, le=65535)
    cert_file: Path | None = None
    key_file: Path | None = None
    plain_http: bool = False
    public_url: str | None = None  # the address in invitation links (default: https://host:port)
    session_minutes: int = Field(default=480, ge=5, le=60 * 24 * 30)
    invitation_hours: int = Field(default=72, ge=1, le=24 * 30)
    lock_after_failures: int = Field(default=5, ge=1, le=100)
    lock_minutes: int = Field(default=15, ge=1, le=24 * 60)
    max_live_sessions: int = Field(default=50, ge=1, le=1000)  # live log streams at once

    @model_validator(mode="after")
    def _tls_unless_loopback(self) -> PortalConfig:
        if self.plain_http and self.host not in LOOPBACK:
            raise ValueError(
                f"plain_http is allowed only on loopback ({', '.join(LOOPBACK)}), not on "
                f"{self.host!r}: customers' passwords would cross the network unencrypted"
            )
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (or neither: the box's CA)")
        return self


class WitnessConfig(_Model):
    """A witness (c2sp.org/tlog-witness) that countersigns every checkpoint of this box's logs
    (gateway/witness/submitter.py). ``vkey`` is the line 'einblick witness init' printed."""

    name: str  # a label for status and metrics
    url: str  # the submission prefix: http(s)://host:port[/path], POSTs go to <url>/add-checkpoint
    vkey: str
    ca_file: Path | None = None  # HTTPS: the CA that signed the witness's certificate
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    # While it does not answer, asked again after 1 s, 2 s, 4 s … up to this.
    retry_max_s: float = Field(default=60.0, ge=1, le=3600)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"must be lower-case letters, digits and '-', found {value!r}")
        return value

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError(f"expected http(s)://host:port[/prefix], found {value!r}")
        return value

    @field_validator("vkey")
    @classmethod
    def _vkey(cls, value: str) -> str:
        from gateway.log.note import COSIGNATURE_TYPE, NoteError, Verifier  # noqa: PLC0415

        try:
            verifier = Verifier.parse(value)
        except NoteError as exc:
            raise ValueError(str(exc)) from exc
        if verifier.sig_type != COSIGNATURE_TYPE:
            raise ValueError(
                f"{verifier.name}: a witness key is a cosigner key (type 0x04, as 'einblick "
                f"witness init' prints it); this is type 0x{verifier.sig_type:02x}"
            )
        return value


class Config(_Model):
    einblick_config: Literal[1]
    instance: Annotated[str, Field(default_factory=box_instance)]
    data_dir: Path = Path("data")
    database: Path | None = None  # default: <data_dir>/einblick.db
    signing_key: Path | None = None  # default: <data_dir>/keys/signing.key
    policies_dir: Path = Path("policies")
    broker: BrokerConfig = BrokerConfig()
    recipients: Annotated[list[RecipientConfig], Field(default_factory=list)]
    outbox: OutboxConfig = OutboxConfig()
    pipeline: PipelineConfig = PipelineConfig()
    metrics: MetricsConfig = MetricsConfig()
    retention: RetentionConfig = RetentionConfig()
    disk: DiskConfig = DiskConfig()
    portal: PortalConfig | None = None  # None: no portal
    # Several instances behind one external broker, each owning some customers (gateway/cluster.py).
    cluster: ClusterConfig | None = None

    witnesses: Annotated[list[WitnessConfig], Field(default_factory=list)]
    source: Path = Path("einblick.yaml")  # set by the loader, not by the file

    @field_validator("instance")
    @classmethod
    def _instance(cls, value: str) -> str:
        if not NAME.match(value):
            raise ValueError(f"must be lower-case letters, digits and '-', found {value!r}")
        return value

    @model_validator(mode="after")
    def _unique_recipients(self) -> Config:
        seen: set[str] = set()
        for recipient in self.recipients:
            if recipient.name in seen:
                raise ValueError(f"recipient {recipient.name!r} is defined twice")
            seen.add(recipient.name)
        return self

    @model_validator(mode="after")
    def _unique_witnesses(self) -> Config:
        for attribute in ("name", "vkey"):
            values = [getattr(w, attribute) for w in self.witnesses]
            for value in values:
                if values.count(value) > 1:
                    raise ValueError(f"witnesses: the {attribute} {value!r} is listed twice")
        return self

    @model_validator(mode="after")
    def _cluster_member(self) -> Config:
        if self.cluster is None:
            return self
        if self.broker.mode != "external":
            raise ValueError(
                "cluster: several instances share one broker they do not manage; set "
                "broker.mode: external (each managed broker would be a separate site)"
            )
        if self.instance not in self.cluster.names:
            raise ValueError(
                f"instance {self.instance!r} is not one of cluster.instances "
                f"({', '.join(self.cluster.names)}): it would own no customer"
            )
        return self

    @model_validator(mode="after")
    def _broker_room(self) -> Config:
        limits = self.broker.limits
        headroom = 4 * self.broker_packet_bytes + 64 * 1024 * 1024
        if (
            limits.memory_limit_bytes
            and limits.memory_limit_bytes < limits.max_queued_bytes + headroom
        ):
            raise ValueError(
                f"broker.limits.memory_limit_bytes ({limits.memory_limit_bytes}) must be 0 or at "
                f"least max_queued_bytes + 4 x the largest packet ({self.broker_packet_bytes}) "
                f"+ 64 MiB ({limits.max_queued_bytes + headroom}): below that, Mosquitto would run "
                "out of memory before the queue limit and drop messages it has already acknowledged"
            )
        return self

    @property
    def broker_packet_bytes(self) -> int:
        """The largest packet the device broker accepts: broker.limits.max_packet_bytes, or the
        pipeline's payload limit plus MQTT's overhead; never below what the pipeline inspects."""
        derived = self.pipeline.max_payload_bytes + PACKET_OVERHEAD
        explicit = self.broker.limits.max_packet_bytes
        return derived if explicit is None else max(explicit, derived)

    @property
    def base(self) -> Path:
        return self.source.parent

    def path(self, value: Path) -> Path:
        return value if value.is_absolute() else (self.base / value)

    @property
    def data_path(self) -> Path:
        return self.path(self.data_dir)

    @property
    def database_path(self) -> Path:
        return self.path(self.database) if self.database else self.data_path / "einblick.db"

    @property
    def signing_key_path(self) -> Path:
        if self.signing_key:
            return self.path(self.signing_key)
        return self.data_path / "keys" / "signing.key"

    @property
    def policies_path(self) -> Path:
        return self.path(self.policies_dir)

    @property
    def broker_dir(self) -> Path:
        return self.data_path / "broker"

    @property
    def control_socket(self) -> Path:
        return self.data_path / "control.sock"

    @property
    def portal_db(self) -> Path:
        return self.data_path / "portal.db"

    def recipient(self, name: str) -> RecipientConfig:
        for recipient in self.recipients:
            if recipient.name == name:
                return recipient
        known = ", ".join(r.name for r in self.recipients) or "none"
        raise ConfigError(str(self.source), f"no recipient named {name!r} (configured: {known})")

    def owns(self, customer: str) -> bool:
        """Whether this instance loads, receives and logs ``customer`` (always, without a cluster)."""
        return self.cluster is None or self.cluster.owner(customer) == self.instance

    def recipient_names(self) -> dict[str, str]:
        return {r.name: r.display_name for r in self.recipients}


def _locate(
    node: yaml.Node | None, loc: tuple[int | str, ...], *, at_key: bool = False
) -> tuple[int | None, int | None]:
    """Walk a composed YAML node along a pydantic error location to its line and column.

    ``at_key`` points at the last key itself rather than its value (for unknown keys)."""
    best = node
    for position, part in enumerate(loc):
        if best is None:
            break
        child: yaml.Node | None = None
        if isinstance(best, yaml.MappingNode):
            for key, value in best.value:
                if isinstance(key, yaml.ScalarNode) and key.value == part:
                    child = key if at_key and position == len(loc) - 1 else value
                    break
        elif (
            isinstance(best, yaml.SequenceNode)
            and isinstance(part, int)
            and 0 <= part < len(best.value)
        ):
            child = best.value[part]
        if child is None:
            break
        best = child
    if best is None:
        return None, None
    return best.start_mark.line + 1, best.start_mark.column + 1


def load_config(path: str | Path) -> Config:
    """Read and validate the configuration file; every problem is a ConfigError with file:line."""
    source = Path(path)
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise ConfigError(str(source), f"cannot read the configuration: {exc.strerror}") from exc
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(source), f"file is {len(raw)} bytes; a configuration is < 1 MiB")
    try:
        text = raw.decode("utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data: Any = yaml.safe_load(text)
    except UnicodeDecodeError as exc:
        raise ConfigError(str(source), f"not UTF-8 text (byte {exc.start})") from exc
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        raise ConfigError(
            str(source),
            f"invalid YAML: {exc.problem}",
            line=mark.line + 1 if mark else None,
            column=mark.column + 1 if mark else None,
        ) from exc
    except yaml.YAMLError as exc:  # e.g. a control character the reader refuses
        raise ConfigError(str(source), f"invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(str(source), "expected a mapping with 'einblick_config: 1' at the top")
    if "source" in data:
        raise ConfigError(str(source), "'source' is set by Einblick, not by the file", key="source")
    try:
        config = Config.model_validate({**data, "source": source.resolve()})
    except ValidationError as exc:
        error = exc.errors()[0]
        loc = tuple(error["loc"])
        line, column = _locate(node, loc, at_key=error["type"] == "extra_forbidden")
        key = ".".join(str(p) for p in loc) or None
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (check the spelling; see README 'Configuration')"
        elif error["type"] == "missing":
            message = "required key is missing"
        raise ConfigError(str(source), message, line=line, column=column, key=key) from exc
    if "instance" not in data:
        # A configuration that names no instance takes the one its log already carries: the
        # log's origin is fixed for ever, and an upgrade (0.1.0 defaulted to 'edge-01'), a new
        # hostname or a restore onto another machine must not make the gateway refuse its log.
        stored = stored_origin(config.database_path)
        if stored is not None:
            config = config.model_copy(update={"instance": stored})
    return config


def stored_origin(database: Path) -> str | None:
    """The origin (instance name) a log database was written under, or None without one."""
    if not database.is_file():
        return None
    from gateway.log.reader import Reader  # noqa: PLC0415 -- the log package loads config

    try:
        reader = Reader.open(database)
    except LogError:
        return None  # not readable here: the gateway's own open says what is wrong
    reader.close()
    return reader.origin or None
