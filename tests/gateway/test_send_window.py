"""A forwarder's window (gateway/messages/send_window.py): a taker waits while it is full and
goes on as soon as a slot is given back."""

from __future__ import annotations

import asyncio

from gateway.messages.send_window import SendWindow


async def test_a_full_window_holds_the_taker_until_a_slot_is_given_back() -> None:
    window = SendWindow(2)
    await window.take()
    await window.take()
    assert window.free == 0
    async with asyncio.timeout(5), asyncio.TaskGroup() as tasks:
        waiting = tasks.create_task(window.take(), name="taker")
        await asyncio.sleep(0)  # the taker runs and finds no room
        assert not waiting.done()
        window.give()
    assert waiting.done() and window.free == 0
    window.free -= 1  # ``offer`` takes a slot without waiting (the forwarder checks first)
    window.give()
    assert window.free == 0
