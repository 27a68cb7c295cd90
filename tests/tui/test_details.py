"""One entry's details (tui/details.py): the payload byte for byte (pretty only when it is JSON),
erased or absent content said as such, the proof as the verifier found it, device text never
markup nor reordering, and a "not yet signed" that turns into "covered" once a checkpoint is."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path

from gateway.bench.sample import NAMES, T0, SampleLog
from tests.tui.conftest import make_app, plain, settle, until
from tui.details import DetailsScreen, render_detail
from tui.model import CheckpointProof, Detail, Row

ROW = Row(
    seq=42,
    at_us=1_772_434_800_000_000,  # 2026-03-02 07:00:00 UTC
    kind="decision",
    customer="baeckerei-schmidt",
    device="oven-1",
    recipient="oven-maker",
    outcome="altered",
    purpose={"en": "Remote maintenance", "de": "Fernwartung"},
    summary={"en": "shared", "de": "geteilt"},
)
CHECKPOINT = CheckpointProof(
    size=43, at_us=1_772_434_801_000_000, key_fingerprint="ed25519:ab12", signature_valid=True,
    head_matches=True,
)  # fmt: skip
DETAIL = Detail(
    row=ROW,
    grant="maintenance",
    policy_version="a3be0a3f37e5",
    legal_basis="contract",
    shared=("door_open",),
    altered=(("temperature", "round", "0.5"),),
    withheld=("serial",),
    reason=None,
    reason_params={},
    texts={"en": "Oven 1: temperature rounded.", "de": "Ofen 1: Temperatur gerundet."},
    topic="ovens/baeckerei-schmidt/oven-1",
    content=b'{"temperature":181.5,"door_open":false}',
    erased=False,
    chain="baeckerei-schmidt",
    index=7,
    entry_hash=bytes(range(32)),
    link_valid=True,
    checkpoint=CHECKPOINT,
    key_fingerprint="ed25519:ffff",
)


def shown(detail: Detail, lang: str = "en") -> str:
    return plain(render_detail(detail, NAMES, lang, UTC))  # type: ignore[arg-type]


def test_the_payload_as_published_and_the_proof_as_verified() -> None:
    text = shown(DETAIL)
    assert "2026-03-02 07:00:00 UTC" in text
    assert "Backofen 1 (oven-1)" in text and "Bäckerei Schmidt" in text
    assert '"temperature": 181.5' in text  # pretty-printed JSON
    assert '39 bytes: {"temperature":181.5,"door_open":false}' in text  # and the exact bytes
    assert "temperature (round 0.5)" in text and "serial" in text
    assert "baeckerei-schmidt #7" in text and bytes(range(32)).hex() in text
    assert "✓ hash matches the entry's content" in text
    assert "✓ covered (size 43, 2026-03-02 07:00:01 UTC), signature valid" in text
    assert "ed25519:ab12" in text and "ed25519:ffff" not in text  # the checkpoint's key


def test_erased_absent_and_unsigned_are_said_as_such() -> None:
    erased = shown(replace(DETAIL, content=None, erased=True))
    assert "(erased on request – the proof remains)" in erased
    assert "(nothing sent)" in shown(replace(DETAIL, content=None))
    unsigned = shown(replace(DETAIL, checkpoint=None))
    assert "✗ not yet covered by a signed checkpoint" in unsigned and "ed25519:ffff" in unsigned
    forged = replace(CHECKPOINT, signature_valid=False)
    assert "✗ checkpoint signature invalid" in shown(replace(DETAIL, checkpoint=forged))
    moved = replace(CHECKPOINT, head_matches=False)
    assert "✗ checkpoint signature invalid" in shown(replace(DETAIL, checkpoint=moved))
    assert "✗ hash does not match the entry" in shown(replace(DETAIL, link_valid=False))


def test_device_text_is_shown_not_obeyed() -> None:
    hostile = replace(
        DETAIL,
        content="\u202eevil\x1b[2J".encode(),  # not JSON: shown as text
        topic="ovens/\u202eb",
        withheld=("[bold]x[/bold]", "serial\u202e"),
        texts={"en": "line one\nline\u2066two"},
    )
    text = shown(hostile)
    assert "\u202e" not in text and "\x1b" not in text and "\u2066" not in text
    assert "\\u202eevil\\u001b[2J" in text and "ovens/\\u202eb" in text
    assert "[bold]x[/bold]" in text  # markup stays literal text
    assert "line one\nline\\u2066two" in text  # our own line breaks kept
    assert "serial\\u202e" in text
    # JSON escapes control characters but not bidi overrides: the pretty form is made visible too.
    pretty = shown(replace(DETAIL, content='{"name":"\u202eevil"}'.encode()))
    assert "\u202e" not in pretty and '"name": "\\u202eevil"' in pretty


async def test_unsigned_turns_into_covered_when_the_checkpoint_is_signed(
    sample: SampleLog,
) -> None:
    late = T0 + timedelta(hours=1)
    sample.write(sample.drafts(3, late, timedelta(seconds=1)), checkpoint=False)
    seq = int(sample.conn.execute("SELECT max(seq) FROM entries").fetchone()[0])
    app = make_app(sample.path, lang="en")
    async with app.run_test(size=(100, 60)) as pilot:
        await settle(pilot)
        detail = await app.source.detail(seq)
        assert detail is not None and detail.checkpoint is None
        screen = DetailsScreen(detail, seq, recheck_s=0.05)
        await app.push_screen(screen)
        await settle(pilot)
        assert "not yet covered" in plain(screen.body)
        sample.conn.execute("BEGIN IMMEDIATE")
        sample.writer.checkpoint(late + timedelta(seconds=5))
        sample.conn.execute("COMMIT")
        sample.writer.committed()
        await until(
            pilot, lambda: screen.detail is not None and screen.detail.checkpoint is not None
        )
        assert "✓ covered" in plain(screen.body)
        assert screen._recheck is None  # covered: it stops looking
        missing = DetailsScreen(None, 999_999)
        await app.push_screen(missing)
        await settle(pilot)
        assert "Entry #999999 not found." in plain(missing.body)


async def test_each_release_of_a_message_to_one_recipient_shows_only_what_it_kept_back(
    tmp_path: Path,
) -> None:
    # Two grants for one recipient give it two releases of one message (policies/combine.py).
    # Each entry's view names its grant; a field the other release carried is not "withheld".
    from tests.gateway.test_sendtime import open_bench
    from tests.gateway.test_sendtime_overlaps import NOON, POLICY, released
    from tui.local import LocalSource

    async with open_bench(tmp_path, POLICY, NOON) as bench:
        rows = await released(bench, {"temperature": 182.7, "door_open": True, "serial": "X1"})
        source = LocalSource(bench.path, names=NAMES)
        await source.open()
        try:
            details = {g: await source.detail(row.entry_seq) for g, row in rows.items()}
        finally:
            await source.close()
    day, maintenance = details["daytime"], details["maintenance"]
    assert day is not None and maintenance is not None
    assert (day.grant, day.shared, day.withheld) == ("daytime", (), ("serial",))
    assert (maintenance.grant, maintenance.shared) == ("maintenance", ("door_open",))
    assert maintenance.withheld == ("serial",)
    text = shown(day)
    assert "daytime" in text and "door_open" not in text
