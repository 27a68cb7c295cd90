"""Whose topics a policy file declares (gateway/messages/policyset.py): its customer and each
topic's pattern, device and stream. Enough to attribute a message and to give a device its
broker ACL while the file's policy does not run; nothing to decide with. A shape is ``loaded``
once the engine ran its file; one read from a file that never loaded passed no check yet.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from gateway.devices.registry import RegistryError, check_topic
from policies.model import PolicyDocument, TopicSpec
from policies.topics import NAMESPACE, TopicPattern, claims_overlap

__all__ = ["SavedShape", "Shape", "named", "read_refusal", "read_shape", "valid_pattern"]


@dataclass(frozen=True, slots=True)
class Shape:
    """A policy file's customer and topics: enough to attribute a message, nothing to decide."""

    customer: str
    topics: tuple[tuple[str, str, str], ...]  # (pattern, device, stream)
    patterns: tuple[TopicPattern, ...] = field(default=(), compare=False)
    # False: read from a file that never loaded, so no check has passed on these topics yet.
    loaded: bool = field(default=True, compare=False)

    @classmethod
    def of(cls, customer: str, topics: list[tuple[str, str, str]], *, loaded: bool = True) -> Shape:
        kept, compiled = [], []
        for pattern, device, stream in topics:
            try:
                compiled.append(TopicPattern(pattern))
            except Exception:  # a pattern too broken to compile attributes nothing
                continue
            kept.append((pattern, device, stream))
        return cls(customer, tuple(kept), tuple(compiled), loaded)

    def match(self, topic: str, allowed: frozenset[str] | None = None) -> tuple[str, str] | None:
        """(device, stream) owning ``topic``, among the patterns in ``allowed`` if given."""
        for (text, device, stream), pattern in zip(self.topics, self.patterns, strict=True):
            if allowed is not None and text not in allowed:
                continue
            if pattern.match(topic) is not None:
                return device, stream
        return None

    def saved(self) -> SavedShape:
        return SavedShape(customer=self.customer, topics=list(self.topics))


class SavedShape(BaseModel):
    """A shape as ``policy-shapes.json`` keeps it for the next start: the customer, and each
    topic as ``[pattern, device, stream]``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer: str
    topics: list[tuple[str, str, str]]


# A topic without ``stream:`` is the model's default stream, read or loaded alike.
_DEFAULT_STREAM = str(TopicSpec.model_fields["stream"].default)


def read_shape(path: Path) -> Shape | None:
    """What can be read of a file that does not load: its customer and device topics, when the
    YAML parses and has them (a wrong value elsewhere leaves these readable)."""
    try:
        data = yaml.safe_load(path.read_bytes()[: 1 << 20])
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("customer"), str):
        return None
    topics: list[tuple[str, str, str]] = []
    devices = data.get("devices")
    for device in devices if isinstance(devices, list) else ():
        if not isinstance(device, dict) or not isinstance(device.get("id"), str):
            continue
        listed = device.get("topics")
        for topic in listed if isinstance(listed, list) else ():
            if isinstance(topic, dict) and isinstance(topic.get("pattern"), str):
                stream = str(topic.get("stream") or _DEFAULT_STREAM)
                topics.append((topic["pattern"], device["id"], stream))
    return Shape.of(data["customer"], topics, loaded=False)


def valid_pattern(pattern: str) -> bool:
    """Whether ``pattern`` is one a policy may declare."""
    try:
        TopicSpec(pattern=pattern)
    except ValidationError:
        return False
    return True


def read_refusal(
    customer: str, device: str, pattern: str, others: list[tuple[str, str, str]]
) -> str | None:
    """Why a pattern read from a file that never loaded may not be let into the broker, or None.

    ``others``: (customer, pattern, where) of every other customer's topics."""
    try:
        TopicSpec(pattern=pattern)
    except ValidationError as exc:
        why = exc.errors()[0]["msg"].removeprefix("Value error, ")
        return f"it is not a valid topic pattern: {why}"
    first = pattern.split("/", maxsplit=1)[0]
    if TopicPattern(pattern).first_level is None:
        return (
            f"its first level {first!r} is a wildcard, reaching every customer's topics; a file "
            "that has not loaded claims only topics that start with a fixed level"
        )
    if first == NAMESPACE:
        try:
            check_topic(customer, device, pattern, what="topic")
        except RegistryError as exc:
            return str(exc)
    for other, theirs, where in others:
        if claims_overlap(customer, pattern, other, theirs):
            return f"it overlaps {theirs!r} of customer {other!r} ({where})"
    return None


def named(document: PolicyDocument) -> dict[str, str]:
    """The recipients ``document``'s grants name, each as if configured under its own name."""
    return {grant.recipient: grant.recipient for grant in document.grants}
