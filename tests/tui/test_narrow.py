"""The log at 80×24, a newcomer's terminal: the help key stays in the footer, and two devices
with long, similar names stay apart in the device column."""

from __future__ import annotations

from pathlib import Path

import pytest
from textual.widgets import Footer

from gateway.bench.sample import SampleLog
from tests.tui.conftest import make_app, settle
from tui.log_lines import columns_for, fit_name


async def test_the_help_key_is_in_the_footer_at_80x24(sample: SampleLog) -> None:
    app = make_app(Path(sample.path))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        footer = app.screen.query_one(Footer)
        keys = {k.key: k.region for k in footer.query("FooterKey")}  # type: ignore[attr-defined]
        assert "question_mark" in keys
        for key, region in keys.items():
            assert region.width > 0 and region.right <= 80, (key, region)
            # Nothing drawn over another key (the palette's key covered "? Hilfe").
            for other, elsewhere in keys.items():
                assert other == key or not region.overlaps(elsewhere), (key, other)


@pytest.mark.parametrize(
    ("names", "width"),
    [
        (["Lieferwagen 1 (B-SW 101)", "Lieferwagen 2 (B-SW 102)"], 11),
        (["Backofen Filiale Nord 1", "Backofen Filiale Nord 2", "Backofen Filiale Süd 1"], 11),
        (["Ofen Halle Nord links", "Ofen Halle Süd links"], 11),
        (["Meeting room occupancy sensor", "Meeting room occupancy sensor 2"], 14),
        (["Lieferwagen 1 (B-SW 101)", "Lieferwagen 2 (B-SW 102)"], columns_for(80)[0]),
    ],
)
def test_similar_long_names_stay_apart(names: list[str], width: int) -> None:
    shown = [fit_name(n, width, names) for n in names]
    assert all(len(s) == width for s in shown), shown
    assert len(set(shown)) == len(names), shown
    assert all(s[0] == n[0] for s, n in zip(shown, names, strict=True))


def test_a_name_that_fits_or_stands_alone_is_cut_at_its_end() -> None:
    assert fit_name("Kühlhaus", 11, ["Kühlhaus", "Backofen 1"]) == "Kühlhaus   "
    assert fit_name("Hintertür (Kartenleser)", 11, ["Backofen 1"]) == "Hintertür …"
