"""The TUI's customer view never shows another customer's entries, names, grants or counts."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from gateway.bench.sample import NAMES, T0, SampleLog
from tests.tui.conftest import make_app, settle

CUSTOMER = "berg-partner"
OTHERS = ["Bäckerei Schmidt", "Spedition Weber", "Backofen", "Hintertür", "Lieferwagen"]
OTHERS += ["Ofenbau", "TransLog", "baeckerei", "spedition", "oven-", "van-0"]


async def test_every_screen_of_a_customer_view_shows_only_that_customer(tmp_path: Path) -> None:
    log = SampleLog(tmp_path / "einblick.db", seed=11)
    log.add(400, start=T0, step=timedelta(seconds=2))
    try:
        app = make_app(log.path, customer=CUSTOMER)
        shown: dict[str, str] = {}
        async with app.run_test(size=(160, 50)) as pilot:
            await settle(pilot)
            shown["log"] = app.export_screenshot()
            view = app.log_lines.view
            assert view is not None
            rows = await view.rows(0, app.log_lines.count)
            assert rows and {r.customer for r in rows} == {CUSTOMER}
            # Every entry of the whole log, asked for by number: only our own come back.
            own = {r.seq for r in rows}
            for seq in range(1, 401):
                detail = await app.source.detail(seq)
                assert (detail is not None) == (seq in own), seq
            for query in (
                "customer:baeckerei-schmidt",
                "device:oven-1",
                "Backofen",
                "recipient:logistics",
            ):
                app.apply_filter(query)
                await settle(pilot)
                assert app.log_lines.count == 0, query
            app.apply_filter("")
            await settle(pilot)
            await pilot.press("enter")
            await settle(pilot)
            shown["details"] = app.export_screenshot()
            await pilot.press("escape")
            for key in ("o", "g"):
                await pilot.press(key)
                await settle(pilot)
                shown[key] = app.export_screenshot()
                await pilot.press("escape")
                await settle(pilot)
        assert NAMES.customers[CUSTOMER].split()[0] in shown["log"] + shown["o"]
        for screen, text in shown.items():
            for other in OTHERS:
                assert other not in text, f"{other!r} is on the {screen} screen of {CUSTOMER}"
    finally:
        log.close()
