"""What every section of einblick.yaml shares: unknown keys are refused (a misspelt key is an
error at its line, never a silent default) and a loaded section never changes; and the one shape
of a name (instance, recipient, witness) that goes into client ids, topics and file names."""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

__all__ = ["NAME", "Section", "check_name"]

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def check_name(value: str) -> str:
    """``value`` if it is a name (lower-case letters, digits and '-', at most 63), else the
    ValueError pydantic turns into the key's error at its line."""
    if not NAME.match(value):
        raise ValueError(f"must be lower-case letters, digits and '-', found {value!r}")
    return value
