"""How a grant may treat a field: the treatment specs of a policy document, and the path and
duration syntax they are written in.

A field line says ``keep``, ``pseudonymise``, ``{round: STEP}``, ``{coarsen: {grid_m: M, lon:
KEY}}`` or ``{truncate: second|minute|hour|day}``; an aggregate grant names single fields and
the functions that summarise them per window (``AggregateSpec``). Paths: ``a.b`` nested keys,
``*`` any one key, ``a[]`` every element of array ``a``, ``$payload`` the whole body. Durations:
``500ms``, ``60s``, ``5m``, ``1h``, ``1d``. The rest of the document is ``policies.model``'s.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
)

__all__ = [
    "DEFAULT_MIN_COUNT",
    "PATH_SEGMENT",
    "AggregateSpec",
    "CoarsenParams",
    "CoarsenSpec",
    "Duration",
    "RoundSpec",
    "Spec",
    "Treatment",
    "TruncateSpec",
    "check_path",
    "parse_duration",
]

DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h|d)$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
PATH_SEGMENT = re.compile(r"^(\*|[^.\[\]*$]+)((?:\[\])*)$")


class Spec(BaseModel):
    """Every part of a policy document: unknown keys are errors, parsed values never change."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def parse_duration(value: object) -> float:
    """``"60s"`` -> 60.0 seconds; a bare number is seconds."""
    if isinstance(value, bool):
        raise ValueError(f"expected a duration like 60s or 5m, found {value!r}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str) and (match := DURATION.match(value.strip())):
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    else:
        raise ValueError(f"expected a duration like 500ms, 60s, 5m, 1h or 1d, found {value!r}")
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, found {value!r}")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]


def check_path(path: str) -> str:
    """Validate a field path (``a.b``, ``sensors.*.temperature``, ``readings[].value``)."""
    if path == "$payload":
        return path
    if not path:
        raise ValueError("a field path cannot be empty")
    for segment in path.split("."):
        if not PATH_SEGMENT.match(segment):
            raise ValueError(
                f"bad path {path!r}: segment {segment!r} must be a key, '*', or either "
                "followed by '[]'"
            )
    return path


class RoundSpec(Spec):
    round: float = Field(gt=0)


class CoarsenParams(Spec):
    grid_m: float = Field(ge=10, le=1_000_000)
    lon: str = Field(min_length=1)  # sibling key holding the longitude

    @field_validator("lon")
    @classmethod
    def _lon(cls, value: str) -> str:
        if not PATH_SEGMENT.match(value) or value == "*" or "[" in value:
            raise ValueError(f"expected the name of the sibling key, found {value!r}")
        return value


class CoarsenSpec(Spec):
    coarsen: CoarsenParams


class TruncateSpec(Spec):
    truncate: Literal["second", "minute", "hour", "day"]


def _treatment_tag(value: object) -> str | None:
    if isinstance(value, str):
        return value if value in {"keep", "pseudonymise"} else None
    if isinstance(value, dict) and len(value) == 1:
        key = next(iter(value))
        return key if key in {"round", "coarsen", "truncate"} else None
    if isinstance(value, RoundSpec | CoarsenSpec | TruncateSpec):
        return next(iter(type(value).model_fields))
    return None


Treatment = Annotated[
    Annotated[Literal["keep"], Tag("keep")]
    | Annotated[Literal["pseudonymise"], Tag("pseudonymise")]
    | Annotated[RoundSpec, Tag("round")]
    | Annotated[CoarsenSpec, Tag("coarsen")]
    | Annotated[TruncateSpec, Tag("truncate")],
    Discriminator(
        _treatment_tag,
        custom_error_type="treatment",
        custom_error_message=(
            "expected keep, pseudonymise, {round: STEP}, {coarsen: {grid_m: M, lon: KEY}} "
            "or {truncate: second|minute|hour|day}"
        ),
    ),
]


DEFAULT_MIN_COUNT = 3


class AggregateSpec(Spec):
    """Summaries per time window. A field with fewer than ``min_count`` samples in a window is
    withheld for that window (a "mean" of one sample is the sample itself); booleans count as
    1 (true) and 0 (false), so ``mean`` is the share of true and ``sum`` the number of trues."""

    window: Duration
    fields: dict[str, list[Literal["mean", "min", "max", "sum", "count"]]] = Field(min_length=1)
    min_count: int = Field(default=DEFAULT_MIN_COUNT, ge=1, le=1_000_000)

    @field_validator("fields")
    @classmethod
    def _fields(
        cls, value: dict[str, list[Literal["mean", "min", "max", "sum", "count"]]]
    ) -> dict[str, list[Literal["mean", "min", "max", "sum", "count"]]]:
        for path, functions in value.items():
            check_path(path)
            if "*" in path or "[" in path or path == "$payload":
                raise ValueError(f"aggregate names single fields (a.b), found {path!r}")
            if not functions:
                raise ValueError(f"{path}: name at least one of mean, min, max, sum, count")
        return value
