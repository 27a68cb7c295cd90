"""The real app on a real log, driven with Pilot: follow, filter, find, details, language."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from textual.widgets import Input, OptionList, Static

from gateway.bench.sample import T0, SampleLog
from tests.tui.conftest import NOW, make_app, plain, settle, until
from tui.details import DetailsScreen
from tui.grants import GrantsScreen
from tui.help import HelpScreen
from tui.i18n import t
from tui.overview import OverviewScreen


def status_text(app: object) -> str:
    from tui.app import EinblickApp

    assert isinstance(app, EinblickApp)
    return str(app.query_one("#status", Static).render())


async def test_opens_following_the_newest_row(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        log = app.log_lines
        assert log.count == 600
        assert log.follow
        assert log.cursor == 599
        last = log.row_at(599)
        assert last is not None and last.seq == 600
        assert "FOLGEN" in status_text(app)
        assert "600 Einträge" in status_text(app)


async def test_scrolling_up_pauses_and_counts_new_rows_end_resumes(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        log = app.log_lines
        await pilot.press("up", "up")
        assert not log.follow
        assert log.cursor == 597
        assert "PAUSE" in status_text(app)
        sample.add(7, start=T0 + timedelta(hours=1))
        assert await log.poll_now() == 7
        await pilot.pause()
        assert log.pending == 7
        assert log.cursor == 597  # the reader's place is kept
        assert "+7 neu" in status_text(app)
        await pilot.press("end")
        await settle(pilot)
        assert log.follow and log.pending == 0
        assert log.cursor == 606
        assert "FOLGEN" in status_text(app)


async def test_mouse_wheel_up_pauses_follow(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.log_lines.scroll_up(animate=False, immediate=True)  # what the wheel does
        await pilot.pause()
        assert not app.log_lines.follow


async def test_new_entries_appear_within_a_second_while_following(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        log = app.log_lines
        sample.add(3, start=T0 + timedelta(hours=1))
        committed = time.monotonic()
        await until(pilot, lambda: log.count == 603 and log.row_at(602) is not None, timeout=1.0)
        assert time.monotonic() - committed < 1.0
        assert log.follow and log.cursor == 602


async def test_filter_hides_and_find_highlights(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        log = app.log_lines
        await pilot.press("f")
        box = app.query_one("#query", Input)
        assert box.display
        box.value = "device:backofen"
        await pilot.press("enter")
        await settle(pilot)
        assert 0 < log.count < 600
        rows = [log.row_at(i) for i in range(log.count - 10, log.count)]
        assert all(r is not None and r.device in {"oven-1", "oven-2"} for r in rows)
        assert "Filter: device:backofen" in status_text(app)

        await pilot.press("slash")
        app.query_one("#query", Input).value = "oven-2"
        await pilot.press("enter")
        await settle(pilot)
        assert app.find is not None and app.find_count > 0
        start = log.cursor
        hit = log.row_at(start)
        assert hit is not None and hit.hit and hit.device == "oven-2"
        await pilot.press("N")
        await settle(pilot)
        before = log.row_at(log.cursor)
        assert log.cursor < start and before is not None and before.device == "oven-2"
        await pilot.press("n")
        await settle(pilot)
        assert log.cursor == start
        # Find highlights but hides nothing: the other oven's rows are still there.
        assert log.view is not None and await log.view.matches(app.filter) == log.count
        assert any(
            (r := log.row_at(i)) is not None and r.device == "oven-1"
            for i in range(log.cursor - 20, log.cursor + 20)
        )


async def test_bad_filter_is_reported_not_applied(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        app.apply_filter("decision:maybe")
        await settle(pilot)
        assert app.filter.empty and app.log_lines.count == 600


async def test_withheld_jumps(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        log = app.log_lines
        await pilot.press("W")
        await settle(pilot)
        first = log.cursor
        row = log.row_at(first)
        assert row is not None and row.outcome == "withheld"
        assert not log.follow
        await pilot.press("W")
        await settle(pilot)
        second = log.row_at(log.cursor)
        assert log.cursor < first and second is not None and second.outcome == "withheld"
        await pilot.press("w")
        await settle(pilot)
        assert log.cursor == first


async def test_details_show_explanation_payload_and_proof(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        row = app.log_lines.row_at(app.log_lines.cursor)
        assert row is not None
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailsScreen)
        detail = screen.detail
        assert detail is not None and detail.row.seq == row.seq
        assert detail.link_valid
        assert detail.checkpoint is not None and detail.checkpoint.signature_valid
        assert detail.checkpoint.head_matches
        text = plain(screen.body)
        assert detail.texts["de"][:30] in text
        assert "✓ abgedeckt" in text and detail.entry_hash.hex() in text
        assert detail.key_fingerprint is not None and detail.key_fingerprint in text
        await pilot.press("l")
        await pilot.pause()
        assert app.lang == "en"
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, DetailsScreen)


async def test_language_switch_relabels_everything(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "Zeit" in str(app.query_one("#columns", Static).render())
        await pilot.press("l")
        await settle(pilot)
        assert app.lang == "en"
        assert "Time" in str(app.query_one("#columns", Static).render())
        assert "FOLLOW" in status_text(app)
        labels = {b.binding.description for b in app.screen.active_bindings.values()}
        assert "Filter" in labels and "Find" in labels and "Details" in labels
        await pilot.press("l")
        await pilot.pause()
        labels = {b.binding.description for b in app.screen.active_bindings.values()}
        assert "Suchen" in labels


async def test_customer_policy_language_is_the_default(sample: SampleLog) -> None:
    app = make_app(sample.path, customer="berg-partner", lang=None)  # its policy says en
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert app.lang == "en"


async def test_customer_view_shows_nothing_of_other_customers(sample: SampleLog) -> None:
    app = make_app(sample.path, customer="berg-partner")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        log = app.log_lines
        assert 0 < log.count < 600
        assert log.view is not None
        rows = await log.view.rows(0, log.count)
        assert {r.customer for r in rows} == {"berg-partner"}
        # Even a filter naming another customer cannot reach its entries.
        app.apply_filter("customer:baeckerei")
        await settle(pilot)
        assert log.count == 0
        other = next(r for r in range(1, 600) if r not in {x.seq for x in rows})
        assert await app.source.detail(other) is None
        policies, _ = await app.source.policies()
        assert [p.customer for p in policies] == ["berg-partner"]
        overview = await app.source.overview(app.clock())
        assert {s.recipient for s in overview.recipients} == {"energy-provider"}


async def test_overview_counts_per_recipient_without_gateway(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("o")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, OverviewScreen) and screen.overview is not None
        stats = {s.recipient: s for s in screen.overview.recipients}
        assert set(stats) == {"oven-maker", "logistics", "energy-provider"}
        total = sum(s.last_day + s.withheld_day for s in stats.values())
        assert total == 600
        assert "badge" in stats["oven-maker"].never_sent
        assert "temperature" in stats["oven-maker"].fields_sent
        text = plain(screen.body)
        assert "Gateway läuft nicht" in text


async def test_grants_read_only_from_policy_files(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("g")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, GrantsScreen)
        assert not screen.live
        assert {p.customer for p in screen.policies} >= {"baeckerei-schmidt", "spedition-weber"}
        options = screen.query_one("#grants", OptionList)
        assert options.option_count > 4
        # Withdrawing needs the running gateway: refused with a note, nothing asked.
        options.highlighted = next(
            i for i in range(options.option_count) if options.get_option_at_index(i).id
        )
        await pilot.press("x")
        await pilot.pause()
        assert isinstance(app.screen, GrantsScreen)


async def test_help_and_command_palette(sample: SampleLog) -> None:
    app = make_app(sample.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Sprache")
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        assert app.lang == "en"


async def test_the_not_yet_covered_marker_refreshes_when_a_checkpoint_comes(
    sample: SampleLog,
) -> None:
    # The newest entries, written without a checkpoint: the gateway's next one is a second away.
    sample.write(
        sample.drafts(3, NOW - timedelta(minutes=5), timedelta(seconds=1)), checkpoint=False
    )
    app = make_app(sample.path)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("enter")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, DetailsScreen)
        assert screen.detail is not None and screen.detail.checkpoint is None
        pending = t("d_checkpoint_none", "de")
        assert pending in plain(screen.body)
        sample.conn.execute("BEGIN IMMEDIATE")
        sample.writer.checkpoint(NOW - timedelta(minutes=4))
        sample.conn.execute("COMMIT")
        sample.writer.committed()
        await until(pilot, lambda: "✓ abgedeckt" in plain(screen.body), timeout=5)
        assert pending not in plain(screen.body)


async def test_the_count_of_entries_is_written_as_the_readers_language_writes_numbers(
    tmp_path: Path,
) -> None:
    """German readers read "1,234 Einträge" as about one: the count goes through Babel."""
    log = SampleLog(tmp_path / "einblick.db", seed=7)
    log.add(1234, start=T0, step=timedelta(seconds=2))
    log.close()
    app = make_app(log.path)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert "1.234 Einträge" in status_text(app)
        await pilot.press("l")
        await settle(pilot)
        assert "1,234 entries" in status_text(app)
