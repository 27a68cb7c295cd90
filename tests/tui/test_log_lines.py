"""The live log widget (tui/log_lines.py) on a real log under Pilot: it fetches only the rows
around what is on screen, draws each row as time, decision symbol, device, recipient, purpose
and summary in the chosen language, pauses following when a row above the newest is clicked,
and puts a found row in the middle of the view."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.bench.sample import NAMES, T0, SampleLog
from tests.tui.conftest import make_app, settle, until
from tui.log_lines import KEEP, MARGIN, SYMBOLS, LogLines


def _line(log: LogLines, y: int) -> str:
    return log.render_line(y).text


async def test_a_big_log_fetches_only_the_rows_around_the_view(tmp_path: Path) -> None:
    big = SampleLog(tmp_path / "big.db")
    big.add(1500, start=T0, step=timedelta(seconds=1), batch=500)
    big.close()
    app = make_app(big.path)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        log = app.log_lines
        assert log.count == 1500
        height = log.scrollable_content_region.height
        loaded = [i for i in range(log.count) if log.row_at(i) is not None]
        assert loaded and loaded[-1] == 1499
        assert len(loaded) <= height + 2 * MARGIN <= KEEP  # the viewport and its margins
        assert log.row_at(0) is None
        await pilot.press("home")
        await until(pilot, lambda: log.row_at(0) is not None)
        assert not log.follow and log.cursor == 0


async def test_each_row_says_who_sent_what_to_whom_in_the_chosen_language(
    sample: SampleLog,
) -> None:
    app = make_app(sample.path, lang="de")
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot)
        log = app.log_lines
        top = round(log.scroll_y)
        rows = [(y, log.row_at(top + y)) for y in range(log.scrollable_content_region.height)]
        seen = set()
        for y, row in rows:
            assert row is not None
            text = _line(log, y)
            when = row.at_us // 1_000_000
            assert text.startswith(datetime.fromtimestamp(when, UTC).strftime("%H:%M:%S"))
            assert text[9] == SYMBOLS[row.outcome]  # the symbol doubles the colour
            assert NAMES.device(row.device)[:8] in text  # the name, not the id
            assert row.summary["de"][:20] in text
            seen.add(row.outcome)
        assert seen >= {"shared", "altered", "withheld"}
        y, row = rows[-1]
        assert row is not None
        app.action_language()
        await settle(pilot)
        assert row.summary["en"][:20] in _line(log, y)  # drawn again, not from the cache


async def test_clicking_a_row_above_the_newest_pauses_following(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        log = app.log_lines
        assert log.follow
        top = round(log.scroll_y)
        await pilot.click(LogLines, offset=(20, 2))
        await settle(pilot)
        assert not log.follow and log.cursor == top + 2


async def test_a_found_row_is_put_in_the_middle_of_the_view(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(100, 24)) as pilot:
        await settle(pilot)
        log = app.log_lines
        log.move_to(100)
        await settle(pilot)
        height = log.scrollable_content_region.height
        assert not log.follow and log.cursor == 100
        assert round(log.scroll_y) == 100 - height // 2
        await until(pilot, lambda: log.row_at(100) is not None)
