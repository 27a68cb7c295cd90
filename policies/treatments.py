"""Field treatments as pure functions: pseudonymise, round, coarsen, truncate, aggregate.

Each takes a JSON value as firmware sends it — numbers, numbers-as-strings (``"19.2"``), ISO
strings, epoch seconds or milliseconds — and returns the released value of the same kind (a
number stays a number, a string stays a string). A value the treatment cannot handle raises
``TreatmentFailed(problem)``; the engine then withholds that field and says why. Nothing here
reads a clock or touches I/O.
"""

from __future__ import annotations

import hmac
import math
import re
from datetime import datetime
from decimal import Decimal

import orjson

from policies.numbers import Literal

__all__ = [
    "PROBLEMS",
    "PSEUDONYM_HEX",
    "TIME_UNITS",
    "Accumulator",
    "TreatmentFailed",
    "coarsen",
    "decimals_of",
    "pseudonymise",
    "round_to",
    "to_number",
    "truncate",
]

PSEUDONYM_HEX = 20  # 80 bits of HMAC-SHA256: collision-free for any fleet, short in a topic
TIME_UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
PROBLEMS = (
    "not_a_number",
    "out_of_range",
    "not_a_timestamp",
    "not_a_location",
    "not_a_value",
    "conflict",  # two grants for one recipient alter it in different kinds (policies.combine)
)
METERS_PER_DEGREE = 111_320.0
EPOCH_MS_THRESHOLD = 100_000_000_000  # 1e11: seconds reach this in the year 5138

_NUMBER = re.compile(r"^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$", re.ASCII)
_NANOS = re.compile(r"(\.\d{6})\d+", re.ASCII)
_LONGEST_TIME = 64  # characters: no ISO time or epoch number is longer, spaces included


class TreatmentFailed(Exception):
    """A value the treatment cannot handle; ``problem`` is one of ``PROBLEMS``."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


def to_number(value: object) -> float | int:
    """A JSON number, or a string holding one; booleans and non-finite values are not numbers."""
    if isinstance(value, bool):
        raise TreatmentFailed("not_a_number")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise TreatmentFailed("not_a_number")
        return value
    if isinstance(value, str) and len(value) < _LONGEST_TIME and _NUMBER.match(value):
        number = float(value)
        if not math.isfinite(number):
            raise TreatmentFailed("out_of_range")
        return number
    raise TreatmentFailed("not_a_number")


def decimals_of(step: float) -> int:
    """How many decimals a multiple of ``step`` needs: 0.5 -> 1, 0.25 -> 2, 10 -> 0."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def round_to(value: object, step: float, decimals: int) -> float | int | str:
    """Round to the nearest multiple of ``step`` (halves to even); keeps number or string form."""
    number = to_number(value)
    quotient = number / step
    if not math.isfinite(quotient) or abs(quotient) > 2**53:
        raise TreatmentFailed("out_of_range")
    rounded = round(round(quotient) * step, decimals)
    if isinstance(value, str):
        return f"{rounded:.{decimals}f}"
    if decimals == 0 and isinstance(number, int):
        return int(rounded)
    return rounded if decimals else float(rounded)


def truncate(value: object, unit: str) -> str | int | float:
    """Cut a timestamp down to ``unit``: ISO strings, epoch seconds or milliseconds (also as
    strings). Naive ISO times stay naive; ``Z`` stays ``Z``; epoch values truncate in UTC."""
    size = TIME_UNITS[unit]
    if isinstance(value, str):
        if len(value) > _LONGEST_TIME:
            # Before any pattern: a device's string of any length must cost it alone. Matched
            # against ``_NUMBER`` first, 32,000 digits and an "x" held the loop for 14 s.
            raise TreatmentFailed("not_a_timestamp")
        if not _NUMBER.match(value):
            return _truncate_iso(value, unit)
    number = to_number(value) if not isinstance(value, bool) else None
    if number is None:
        raise TreatmentFailed("not_a_timestamp")
    if abs(number) >= EPOCH_MS_THRESHOLD:
        size *= 1000
    if abs(number) > 2**53:
        raise TreatmentFailed("out_of_range")
    cut = math.floor(number / size) * size
    if isinstance(value, str):
        return str(int(cut)) if "." not in value and "e" not in value.lower() else f"{cut:.1f}"
    return int(cut) if isinstance(value, int) else float(cut)


def _truncate_iso(value: str, unit: str) -> str:
    text = value.strip()
    if len(text) < 10:
        raise TreatmentFailed("not_a_timestamp")
    try:
        moment = datetime.fromisoformat(_NANOS.sub(r"\1", text))
    except ValueError as exc:
        raise TreatmentFailed("not_a_timestamp") from exc
    if len(text) == 10:  # a date alone: already coarser than any unit
        return moment.date().isoformat()
    if unit == "second":
        moment = moment.replace(microsecond=0)
    elif unit == "minute":
        moment = moment.replace(second=0, microsecond=0)
    elif unit == "hour":
        moment = moment.replace(minute=0, second=0, microsecond=0)
    else:
        moment = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    sep = text[10] if text[10] in "T t" else "T"
    out = moment.isoformat(sep=sep, timespec="seconds")
    if text.endswith(("Z", "z")) and out.endswith("+00:00"):
        out = out[:-6] + "Z"
    return out


def coarsen(lat: object, lon: object, grid_m: float) -> tuple[float | str, float | str]:
    """Move a position to the centre of its grid cell of about ``grid_m`` metres a side.

    Cells are ``grid_m`` tall everywhere and about ``grid_m`` wide at their centre latitude, so
    a recipient learns the cell, never the point. Numbers stay numbers, strings stay strings.
    """
    try:
        la, lo = float(to_number(lat)), float(to_number(lon))
    except TreatmentFailed as exc:
        raise TreatmentFailed("not_a_location") from exc
    if not (-90.0 <= la <= 90.0 and -180.0 <= lo <= 180.0):
        raise TreatmentFailed("not_a_location")
    dlat = grid_m / METERS_PER_DEGREE
    clat = min(90.0, max(-90.0, (math.floor(la / dlat) + 0.5) * dlat))
    dlon = min(360.0, dlat / max(math.cos(math.radians(clat)), 0.01))
    clon = min(180.0, max(-180.0, (math.floor((lo + 180.0) / dlon) + 0.5) * dlon - 180.0))
    out_lat: float | str = round(clat, 6)
    out_lon: float | str = round(clon, 6)
    if isinstance(lat, str):
        out_lat = f"{clat:.6f}"
    if isinstance(lon, str):
        out_lon = f"{clon:.6f}"
    return out_lat, out_lon


def pseudonymise(value: object, key: bytes) -> str:
    """HMAC-SHA256 of the value under the customer+recipient key, as truncated hex.

    Strings are hashed as UTF-8, other scalars as their JSON text, so ``4711`` and ``"4711"``
    get the same pseudonym (firmware mixes both).
    Without the key the pseudonym cannot be recomputed or linked back.
    """
    if isinstance(value, str):
        data = value.encode("utf-8", errors="surrogatepass")
    elif isinstance(value, Literal):
        # An integer beyond 64 bits (a long badge id) is hashed as written: as a double, distinct
        # ids would share a pseudonym. Other literals (23.20) hash as their number, as always.
        data = value.literal.encode("ascii") if value.integral else orjson.dumps(float(value))
    elif value is None or isinstance(value, bool | int | float):
        data = orjson.dumps(value)
    else:
        raise TreatmentFailed("not_a_value")
    return hmac.digest(key, data, "sha256").hex()[:PSEUDONYM_HEX]


class Accumulator:
    """Running count, sum, min and max of one field over an aggregation window (O(1) memory)."""

    __slots__ = ("count", "maximum", "minimum", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.minimum = math.inf
        self.maximum = -math.inf

    def add(self, value: float) -> None:
        self.count += 1
        self.total += value
        self.minimum = min(self.minimum, value)
        self.maximum = max(self.maximum, value)

    def result(self, function: str) -> float | int:
        """mean, min, max, sum or count of the values added so far (at least one)."""
        if function == "count":
            return self.count
        if function == "sum":
            return self.total
        if function == "mean":
            return self.total / self.count
        if function == "min":
            return self.minimum
        if function == "max":
            return self.maximum
        raise ValueError(f"unknown aggregate function {function!r}")
