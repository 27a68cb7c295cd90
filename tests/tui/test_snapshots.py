"""Snapshots of the main screens at 80x24 and 120x40: a fixed clock, seed and signing key."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from gateway.bench.sample import SampleLog
from tests.tui.conftest import make_app, settle

SIZES = [(80, 24), (120, 40)]
Compare = Callable[..., bool]


def _steps(keys: tuple[str, ...]) -> Callable[[Pilot[int]], object]:
    async def run(pilot: Pilot[int]) -> None:
        await settle(pilot)
        for key in keys:
            await pilot.press(key)
            await settle(pilot)

    return run


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize(
    "keys",
    [
        (),  # the live log, following
        ("up", "up", "up"),  # paused
        ("W", "enter"),  # details of a withheld entry
        ("up", "enter"),  # details of an altered entry
        ("o",),  # overview
        ("g",),  # who gets what (policy files, gateway not running)
        ("question_mark",),  # help
        ("l",),  # English
    ],
    ids=["log", "paused", "details-withheld", "details", "overview", "grants", "help", "english"],
)
def test_screen(
    snap_compare: Compare, sample: SampleLog, size: tuple[int, int], keys: tuple[str, ...]
) -> None:
    app = make_app(Path(sample.path))
    assert snap_compare(app, terminal_size=size, run_before=_steps(keys))
