"""The whole of einblick.yaml as one model: its sections, the rules that span sections (unique
recipients and witnesses, a cluster member on an external broker, the broker's memory room for
the pipeline's packets), and the paths the file's relative paths resolve to."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from gateway.cluster import ClusterConfig
from gateway.config.device_broker import PACKET_OVERHEAD, BrokerConfig
from gateway.config.instance import box_instance
from gateway.config.recipients import RecipientConfig
from gateway.config.runtime import (
    DiskConfig,
    MetricsConfig,
    OutboxConfig,
    PipelineConfig,
    RetentionConfig,
)
from gateway.config.section import Section, check_name
from gateway.config.services import PortalConfig, WitnessConfig
from gateway.errors import ConfigError

__all__ = ["Config"]


class Config(Section):
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
    _moves: tuple[frozenset[str], frozenset[str]] = PrivateAttr(default=(frozenset(), frozenset()))

    @field_validator("instance")
    @classmethod
    def _instance(cls, value: str) -> str:
        return check_name(value)

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
        """Whether this instance loads, receives and logs ``customer`` (always, without a cluster).
        A handover recorded in this instance's log overrides the cluster: section (see
        :meth:`record_moves`)."""
        handed_out, taken_over = self._moves
        if customer in handed_out:
            return False
        if customer in taken_over:
            return True
        return self.cluster is None or self.cluster.owner(customer) == self.instance

    def record_moves(self, handed_out: frozenset[str], taken_over: frozenset[str]) -> None:
        """The customers this instance's log says it handed over or took over
        (``gateway.log.moves``), set at start and carried across reloads: not a setting of the
        file, so a file can never undo a signed handover."""
        self._moves = (handed_out, taken_over)

    @property
    def moves(self) -> tuple[frozenset[str], frozenset[str]]:
        return self._moves

    def recipient_names(self) -> dict[str, str]:
        return {r.name: r.display_name for r in self.recipients}
