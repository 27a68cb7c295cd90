"""Fixtures for the TUI tests: a real log written through ``LogWriter``, the real app."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console, RenderableType
from textual.pilot import Pilot

from gateway.bench.sample import NAMES, T0, SampleLog
from policies.examples import example_path
from tui.app import EinblickApp
from tui.i18n import Lang
from tui.local import LocalSource

NOW = T0 + timedelta(minutes=30)
POLICIES = example_path("bakery").parent


def fixed_clock() -> datetime:
    return NOW


@pytest.fixture
def sample(tmp_path: Path) -> Iterator[SampleLog]:
    log = SampleLog(tmp_path / "einblick.db", seed=7)
    log.add(600, start=T0, step=timedelta(seconds=2))
    yield log
    log.close()


def make_app(
    db: Path,
    *,
    customer: str | None = None,
    lang: Lang | None = "de",
    policies: Path | None = POLICIES,
    control_socket: Path | None = None,
) -> EinblickApp:
    source = LocalSource(
        db, customer=customer, names=NAMES, policies_dir=policies, control_socket=control_socket
    )
    return EinblickApp(source, lang=lang, clock=fixed_clock, tz=UTC)


async def settle(pilot: Pilot[int]) -> None:
    """Let the app finish what it started: workers (opening, loading rows), then a repaint."""
    await pilot.pause()
    await pilot.app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot: Pilot[int], condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait for the app (its timers and workers) to make ``condition`` true."""
    loop_time = 0.0
    while not condition():
        if loop_time > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await pilot.pause(0.05)
        loop_time += 0.05


def plain(renderable: RenderableType, width: int = 120) -> str:
    """What a renderable shows, as plain text."""
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


AsyncCheck = Callable[[Pilot[int]], Awaitable[None]]
