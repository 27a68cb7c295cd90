"""The writer's helper thread: results, errors, order, cancellation and closing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from gateway.messages.handoff import HelperThread


async def test_work_runs_on_one_other_thread_in_order_and_answers_on_the_loop() -> None:
    helper = HelperThread("test-helper")
    seen: list[tuple[int, int]] = []

    def work(n: int) -> int:
        seen.append((n, threading.get_ident()))
        return n * n

    results = await asyncio.gather(*(helper.submit(lambda n=n: work(n)) for n in range(20)))
    assert results == [n * n for n in range(20)]
    assert [n for n, _ in seen] == list(range(20))
    assert len({ident for _, ident in seen}) == 1
    assert seen[0][1] != threading.get_ident()
    helper.close()


async def test_an_exception_reaches_the_caller_and_the_thread_goes_on() -> None:
    helper = HelperThread("test-helper")

    def fails() -> None:
        raise ValueError("disk says no")

    with pytest.raises(ValueError, match="disk says no"):
        await helper.submit(fails)
    assert await helper.submit(lambda: 7) == 7
    helper.close()


def _slow(release: threading.Event, finished: list[str]) -> Callable[[], str]:
    """Work that ends when ``release`` is set, and says so in ``finished``."""

    def slow() -> str:
        release.wait(10)
        finished.append("done")
        return "done"

    return slow


async def test_a_cancelled_caller_does_not_stop_the_work_and_close_waits_for_it() -> None:
    helper = HelperThread("test-helper")
    release = threading.Event()
    finished: list[str] = []
    slow = _slow(release, finished)
    future = helper.submit(slow)
    future.cancel()
    release.set()
    await asyncio.to_thread(helper.close)
    assert finished == ["done"]
    with pytest.raises(RuntimeError, match="test-helper: the helper thread is closed"):
        helper.submit(lambda: None)


async def test_a_pinned_future_holds_its_cancelled_waiter_until_the_work_is_done() -> None:
    """The store's wait for its COMMIT: one await, cancelled only once the work has ended."""
    helper = HelperThread("test-helper")
    release = threading.Event()
    finished: list[str] = []
    slow = _slow(release, finished)
    future = helper.submit(slow, pinned=True)
    assert not future.cancel()
    seen: list[list[str]] = []

    async def waiter() -> None:
        try:
            await future
        finally:
            seen.append(list(finished))

    async with asyncio.TaskGroup() as tasks:
        task = tasks.create_task(waiter(), name="waiter")
        await asyncio.sleep(0)  # the waiter is suspended on the future
        task.cancel()
        task.cancel()
        for _ in range(3):  # turns of the loop: a plain future's waiter would be cancelled by now
            await asyncio.sleep(0)
        assert not task.done()  # the cancellations wait for the work
        release.set()
    assert task.cancelled()
    assert seen == [["done"]] and future.result() == "done"
    helper.close()
