"""Retention on a real log file: one customer's old content and old entries go, the other
customer's stay, every chain and every bundle still verifies, and the removal is a signed entry."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import orjson
import pytest

from gateway.log.bundle import export_customer, verify_bundle
from gateway.log.keys import Signer
from gateway.log.verify import verify_db
from gateway.rights.retention import RetentionDone, apply, retention_for, years_before
from policies.model import RetentionSpec
from tests.log.conftest import T0, Log, make_draft

SCHMIDT = "baeckerei-schmidt"
MEIER = "spedition-meier"
NOW = T0
# Three ages of data per customer: older than two years, two months old, yesterday. The oldest
# batch is one whole block of 256 leaves: a tree drops entries only by whole blocks.
AGES = ((timedelta(days=3 * 365), 256), (timedelta(days=60), 8), (timedelta(days=1), 8))
OLD = AGES[0][1]
TWO_MONTHS = 2 * OLD  # the first draft number of Schmidt's two-month-old batch


def _fill(log: Log) -> None:
    i = 0
    for age, count in AGES:
        for customer in (SCHMIDT, MEIER):
            drafts = [
                make_draft(i + k, customer, at=NOW - age + timedelta(seconds=k))
                for k in range(count)
            ]
            log.write(drafts)  # signs a checkpoint right after the batch
            i += count


def _counts(
    conn: sqlite3.Connection, customer: str, older_than_s: float | None = None
) -> tuple[int, int]:
    """(entries, content rows) of ``customer``, optionally only those older than a cut-off."""
    where = "c.name = ?"
    params: list[object] = [customer]
    if older_than_s is not None:
        where += " AND e.at < ?"
        params.append(int(older_than_s * 1_000_000))
    row = conn.execute(
        "SELECT count(*), count(t.seq) FROM entries e JOIN chains c ON c.id = e.chain_id"
        f" LEFT JOIN content t ON t.seq = e.seq WHERE {where}",
        params,
    ).fetchone()
    return int(row[0]), int(row[1])


def _apply(log: Log, customer: str, rule: RetentionSpec) -> RetentionDone:
    log.conn.execute("BEGIN IMMEDIATE")
    done = apply(log.writer, customer, rule, NOW)
    log.writer.checkpoint(NOW)
    log.conn.execute("COMMIT")
    log.writer.committed()
    return done


def test_retention_removes_one_customers_old_data_and_every_proof_still_verifies(
    log: Log, signer: Signer
) -> None:
    _fill(log)
    old_bundles = {c: export_customer(log.path, c) for c in (SCHMIDT, MEIER)}
    meier_before = _counts(log.conn, MEIER)
    content_cut = (NOW - timedelta(days=30)).timestamp()
    _, old_content = _counts(log.conn, SCHMIDT, content_cut)
    assert old_content > 0

    done = _apply(log, SCHMIDT, RetentionSpec(content_days=30, entries_years=2))

    assert done.removed
    entries, contents = _counts(log.conn, SCHMIDT, content_cut)
    assert contents == 0, "content older than 30 days is still stored"
    assert entries == 8, "the two-month-old entries must stay (only their content goes)"
    # the 3-year-old batch is behind the anchor; yesterday's batch keeps its content
    assert _counts(log.conn, SCHMIDT) == (8 + 8 + 1, 6)
    assert _counts(log.conn, MEIER) == meier_before, "another customer's data was touched"
    topics = log.conn.execute(
        "SELECT count(*) FROM topics t JOIN chains c ON c.id = t.chain_id WHERE c.name = ?",
        (SCHMIDT,),
    ).fetchone()[0]
    two_months = range(TWO_MONTHS, TWO_MONTHS + 8)
    assert topics == len({f"schmidt/oven-{k % 3}/telemetry" for k in two_months if k % 4 != 3})

    report = verify_db(log.path, public_key=signer.public)
    assert report.ok, report.summary()
    for customer in (SCHMIDT, MEIER):
        assert verify_bundle(export_customer(log.path, customer), signer.public).ok
        assert verify_bundle(old_bundles[customer], signer.public).ok

    # the removal is itself an entry at the end of the customer's chain, signed, in de and en
    (body,) = log.conn.execute(
        "SELECT b.doc FROM entries e JOIN chains c ON c.id = e.chain_id"
        " JOIN bodies b ON b.id = e.body_id WHERE c.name = ? ORDER BY e.idx DESC LIMIT 1",
        (SCHMIDT,),
    ).fetchone()
    text_de, text_en = (
        log.conn.execute(
            "SELECT text FROM texts WHERE digest = ?",
            (bytes.fromhex(orjson.loads(body)[key]),),
        ).fetchone()[0]
        for key in ("text_de", "text_en")
    )
    params = orjson.loads(body)["reason_params"]
    assert orjson.loads(body)["kind"] == "retention"
    assert params["entries"] == str(OLD) and params["contents"] == str(old_content)
    assert params["content_before"].startswith((NOW - timedelta(days=30)).date().isoformat())
    assert params["entries_before"].startswith(years_before(NOW, 2).date().isoformat())
    # Dates as Babel writes them for each language (retention entries are dated in UTC).
    assert f"die Inhalte von {old_content} Einträgen vor dem 30.01.2026 08:00:00 UTC" in text_de
    assert f"{OLD} Einträge vor dem 01.03.2024 08:00:00 UTC wurden entfernt" in text_de
    assert f"{OLD} entries from before 2024-03-01 08:00:00 UTC were removed" in text_en
    signed = log.conn.execute(
        "SELECT max(k.size) FROM checkpoints k JOIN chains c ON c.id = k.chain_id WHERE c.name = ?",
        (SCHMIDT,),
    ).fetchone()[0]
    assert signed == OLD + 8 * 2 + 1  # the log's full length: the retention entry is covered


def test_a_second_run_with_nothing_old_left_records_nothing(log: Log) -> None:
    _fill(log)
    rule = RetentionSpec(content_days=30, entries_years=2)
    _apply(log, SCHMIDT, rule)
    size = log.writer.head(SCHMIDT)[0]
    done = _apply(log, SCHMIDT, rule)
    assert not done.removed
    assert log.writer.head(SCHMIDT)[0] == size


def test_no_limit_keeps_everything(log: Log) -> None:
    _fill(log)
    before = _counts(log.conn, SCHMIDT)
    done = _apply(log, SCHMIDT, RetentionSpec())
    assert not done.removed
    assert _counts(log.conn, SCHMIDT) == before


@pytest.mark.parametrize(
    ("box", "policy", "expected"),
    [
        (RetentionSpec(), None, RetentionSpec()),
        (RetentionSpec(content_days=90), None, RetentionSpec(content_days=90)),
        (
            RetentionSpec(content_days=90, entries_years=10),
            RetentionSpec(content_days=7),
            RetentionSpec(content_days=7, entries_years=10),
        ),
        (
            RetentionSpec(content_days=90),
            RetentionSpec(entries_years=3),
            RetentionSpec(content_days=90, entries_years=3),
        ),
    ],
)
def test_a_customers_limits_are_their_policys_key_by_key_else_the_boxs(
    box: RetentionSpec, policy: RetentionSpec | None, expected: RetentionSpec
) -> None:
    assert retention_for(box, policy) == expected


def test_years_before_keeps_the_calendar_day() -> None:
    leap = T0.replace(year=2028, month=2, day=29)
    assert years_before(leap, 1) == leap.replace(year=2027, day=28)
    assert years_before(T0, 3) == T0.replace(year=2023)
