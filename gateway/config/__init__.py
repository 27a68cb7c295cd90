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

The sections live in their own modules: ``section`` (what all share), ``instance`` (the box's
name), ``recipients``, ``device_broker``, ``runtime`` (outbox, pipeline, retention, disk,
metrics), ``services`` (portal, witnesses), ``document`` (``Config``, the whole file) and
``loading`` (``load_config``, errors at file:line). The cluster block is ``gateway.cluster``.
"""

# Importable from here as before the split. Re-exported by name, not in ``__all__``: each name's
# home is its module (tests/packaging/test_exports.py).
from gateway.config.device_broker import PACKET_OVERHEAD as PACKET_OVERHEAD
from gateway.config.device_broker import BrokerConfig as BrokerConfig
from gateway.config.device_broker import BrokerLimits as BrokerLimits
from gateway.config.document import Config as Config
from gateway.config.instance import box_instance as box_instance
from gateway.config.instance import host_part as host_part
from gateway.config.loading import load_config as load_config
from gateway.config.loading import stored_origin as stored_origin
from gateway.config.recipients import RecipientConfig as RecipientConfig
from gateway.config.recipients import TlsConfig as TlsConfig
from gateway.config.runtime import DiskConfig as DiskConfig
from gateway.config.runtime import MetricsConfig as MetricsConfig
from gateway.config.runtime import OutboxConfig as OutboxConfig
from gateway.config.runtime import PipelineConfig as PipelineConfig
from gateway.config.runtime import RetentionConfig as RetentionConfig
from gateway.config.section import NAME as NAME
from gateway.config.services import PortalConfig as PortalConfig
from gateway.config.services import WitnessConfig as WitnessConfig
