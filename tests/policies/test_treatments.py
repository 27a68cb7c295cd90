"""Treatments as tables: every kind of input firmware sends, and what must come out."""

from __future__ import annotations

import hmac
import re

import pytest

from policies import treatments
from policies.treatments import (
    PSEUDONYM_HEX,
    Accumulator,
    TreatmentFailed,
    coarsen,
    decimals_of,
    pseudonymise,
    round_to,
    truncate,
)


@pytest.mark.parametrize(
    ("value", "step", "expected"),
    [
        (21.37, 0.5, 21.5),
        (21.2, 0.5, 21.0),
        (-0.85, 0.5, -1.0),
        (231, 10, 230),
        (234, 10, 230),
        ("19.2", 1, "19"),
        ("19.26", 0.1, "19.3"),
        ("52.6", 0.5, "52.5"),
        (4.0, 0.25, 4.0),
        (0, 0.5, 0.0),
        (1e6, 1000, 1000000.0),
        (1234, 1000, 1000),
    ],
)
def test_round(value: object, step: float, expected: object) -> None:
    got = round_to(value, step, decimals_of(step))
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("ON", "not_a_number"),
        (True, "not_a_number"),
        (None, "not_a_number"),
        ([1], "not_a_number"),
        ({"a": 1}, "not_a_number"),
        ("1e999", "out_of_range"),
        (1e308, "out_of_range"),
        ("", "not_a_number"),
        ("١٢", "not_a_number"),
    ],
)
def test_round_refuses(value: object, problem: str) -> None:
    with pytest.raises(TreatmentFailed) as caught:
        round_to(value, 0.001, 3)
    assert caught.value.problem == problem


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        ("2026-06-03T09:29:41Z", "minute", "2026-06-03T09:29:00Z"),
        ("2026-06-03T09:29:41Z", "hour", "2026-06-03T09:00:00Z"),
        ("2026-06-03T09:29:41+02:00", "day", "2026-06-03T00:00:00+02:00"),
        ("2021-03-13T09:20:26", "minute", "2021-03-13T09:20:00"),
        ("2020-02-12T15:15:46.014773143Z", "second", "2020-02-12T15:15:46Z"),
        ("2026-06-03 09:29:41", "minute", "2026-06-03 09:29:00"),
        ("2026-06-03", "hour", "2026-06-03"),
        (1699882482, "minute", 1699882440),
        (1699882482, "hour", 1699880400),
        (1631186545.04, "second", 1631186545.0),
        (1486144502122, "minute", 1486144500000),
        ("1699882482", "minute", "1699882440"),
    ],
)
def test_truncate(value: object, unit: str, expected: object) -> None:
    got = truncate(value, unit)
    assert got == expected
    assert type(got) is type(expected)


@pytest.mark.parametrize("value", ["0T00:00:11", "soon", "", True, None, {"t": 1}, [1], "9" * 80])
def test_truncate_refuses(value: object) -> None:
    with pytest.raises(TreatmentFailed):
        truncate(value, "minute")


@pytest.mark.parametrize(
    ("lat", "lon", "grid"),
    [
        (52.195913, 7.688245, 1000),
        (52.3153748, 5.0408462, 500),
        (32.87336, -117.22743, 1000),
        (-33.86, 151.2, 10000),
        (89.99, 179.99, 1000),
        ("52.195913", "7.688245", 1000),
    ],
)
def test_coarsen_stays_within_a_cell(lat: object, lon: object, grid: float) -> None:
    out_lat, out_lon = coarsen(lat, lon, grid)
    assert type(out_lat) is type(lat)
    assert abs(float(out_lat) - float(lat)) * 111_320 <= grid  # type: ignore[arg-type]
    # Two points in the same cell coarsen to the same centre: the recipient learns the cell only.
    again = coarsen(float(lat) + 1e-7, float(lon) + 1e-7, grid)  # type: ignore[arg-type]
    assert (float(again[0]), float(again[1])) == (float(out_lat), float(out_lon))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("lat", "lon"), [(None, 7.0), (91.0, 7.0), (52.0, 181.0), ("north", 7.0), (True, 7.0)]
)
def test_coarsen_refuses(lat: object, lon: object) -> None:
    with pytest.raises(TreatmentFailed) as caught:
        coarsen(lat, lon, 1000)
    assert caught.value.problem == "not_a_location"


@pytest.mark.parametrize("value", ["jjolie", "45:e1:74:12:6e:00", 4711, 1.5, True, None, ""])
def test_pseudonymise_is_keyed_and_unlinkable(value: object) -> None:
    one = pseudonymise(value, b"k" * 32)
    assert len(one) == PSEUDONYM_HEX and int(one, 16) >= 0
    assert one == pseudonymise(value, b"k" * 32)
    assert one != pseudonymise(value, b"x" * 32)  # another recipient's key: no link
    assert hmac.compare_digest(one, pseudonymise(value, b"k" * 32))


def test_pseudonymise_numbers_like_strings_and_refuses_containers() -> None:
    assert pseudonymise(4711, b"k") == pseudonymise("4711", b"k")
    for value in ({"a": 1}, [1]):
        with pytest.raises(TreatmentFailed):
            pseudonymise(value, b"k")


@pytest.mark.parametrize(
    ("function", "expected"),
    [("mean", 2.0), ("min", 1.0), ("max", 3.0), ("sum", 6.0), ("count", 3)],
)
def test_accumulator(function: str, expected: float) -> None:
    acc = Accumulator()
    for value in (1.0, 2.0, 3.0):
        acc.add(value)
    assert acc.result(function) == expected


def test_a_device_string_of_any_length_costs_no_pattern_match_beyond_a_times_length(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``{"ts": "111…1x"}`` under a truncating grant: the number pattern backtracked
    quadratically over the whole string (32,000 digits held the event loop 14 s, a 256 KB one
    about a quarter of an hour, every other customer waiting). A string longer than any time is
    refused before any pattern sees it."""
    seen: list[int] = []

    class Counting:
        def __init__(self, pattern: re.Pattern[str]) -> None:
            self.pattern = pattern

        def match(self, text: str) -> re.Match[str] | None:
            seen.append(len(text))
            return self.pattern.match(text)

    monkeypatch.setattr(treatments, "_NUMBER", Counting(treatments._NUMBER))
    for hostile in (" " * 70 + "1700000000", "1" * 65, "1" * 256_000 + "x"):
        with pytest.raises(TreatmentFailed, match="not_a_timestamp"):
            truncate(hostile, "minute")
        with pytest.raises(TreatmentFailed, match="not_a_number"):
            round_to(hostile, 0.5, 1)
        assert seen == []  # before the longest: the old code took minutes over it
    assert truncate("1700000059", "minute") == "1700000040" and set(seen) == {10}
