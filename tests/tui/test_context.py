"""What screens use of the running app (tui/context.py): the app seen as its context, and work
started as a named worker whose coroutine is made only when it runs, so an exclusive newer one
cancels the older without leaving a coroutine never awaited."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from gateway.bench.sample import SampleLog
from tests.tui.conftest import make_app, settle
from tui.context import ctx, start


async def test_workers_run_in_their_group_and_an_exclusive_one_replaces_the_older(
    sample: SampleLog,
) -> None:
    app = make_app(sample.path, lang="en")
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        seen = ctx(app.screen)
        assert id(seen) == id(app) and seen.lang == "en" and seen.source is app.source
        made: list[str] = []
        release = asyncio.Event()

        def job(name: str) -> Callable[[], Coroutine[Any, Any, None]]:
            async def work() -> None:
                made.append(name)
                await release.wait()

            return work

        first = start(app.screen, job("first"), group="probe", exclusive=True, name="first")
        await pilot.pause()
        second = start(app.screen, job("second"), group="probe", exclusive=True, name="second")
        await pilot.pause()
        assert (first.name, first.group, second.group) == ("first", "probe", "probe")
        assert first.is_cancelled and not second.is_cancelled
        release.set()
        await app.workers.wait_for_complete([second])
        assert second.is_finished and made[-1] == "second"
