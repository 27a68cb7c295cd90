"""The running gateway's pace: the outbox, the pipeline, retention, the disk projection and the
metrics listener, each bounded where a wrong value would hurt."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from gateway.config.runtime import (
    DiskConfig,
    MetricsConfig,
    OutboxConfig,
    PipelineConfig,
    RetentionConfig,
)


def test_the_defaults_are_those_the_readme_documents() -> None:
    outbox = OutboxConfig()
    assert (outbox.max_rows, outbox.when_recipient_full, outbox.disk_share) == (
        10_000_000,
        "withhold",
        0.5,
    )
    pipeline = PipelineConfig()
    assert (pipeline.max_payload_bytes, pipeline.queue, pipeline.batch_max) == (262144, 2000, 100)
    assert MetricsConfig().enabled is False and MetricsConfig().host == "127.0.0.1"
    assert RetentionConfig().check_every_s == 3600.0


@pytest.mark.parametrize(
    ("section", "key", "value"),
    [
        (OutboxConfig, "max_rows", 9),
        (OutboxConfig, "disk_share", 0.95),  # the log and the OS need the rest of the disk
        (OutboxConfig, "when_recipient_full", "drop"),  # there is no dropping
        (PipelineConfig, "max_payload_bytes", 63),
        (PipelineConfig, "checkpoint_interval_s", 61),  # the bounded delay of a signature
        (PipelineConfig, "device_max_rate", 0),
        (RetentionConfig, "check_every_s", 86_401),
        (DiskConfig, "warn_free_percent", 101),
        (MetricsConfig, "port", 0),
    ],
)
def test_values_that_would_hurt_are_refused(
    section: type[BaseModel], key: str, value: object
) -> None:
    with pytest.raises(ValidationError, match=key):
        section.model_validate({key: value})


def test_retention_takes_the_policy_keys_and_refuses_others() -> None:
    retention = RetentionConfig.model_validate({"content_days": 30, "entries_years": 10})
    assert (retention.content_days, retention.entries_years) == (30, 10)
    with pytest.raises(ValidationError, match="content_dayz"):
        RetentionConfig.model_validate({"content_dayz": 30})
