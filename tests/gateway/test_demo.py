"""``einblick demo`` (gateway/operations/demo.py): it never deletes a directory it did not make;
a run starts the cloud broker, the gateway and the demo's devices, invites the first customer to
the portal, stops all of them in order, and leaves a log of the demo's customers that verifies
with every entry signed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from gateway.errors import GatewayError
from gateway.log.verify import verify_db
from gateway.operations.demo import MARKER, run_demo
from simulators.demo import DEMO_DEVICES


def test_a_directory_the_demo_did_not_make_is_left_alone(tmp_path: Path) -> None:
    mine = tmp_path / "work"
    mine.mkdir()
    (mine / "notes.txt").write_text("not the demo's", encoding="utf-8")
    with pytest.raises(GatewayError, match=f"{mine} exists and is not a demo directory"):
        run_demo(mine, tui=False, duration=0.1)
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def _customers(db: Path) -> set[str]:
    """The logs that hold entries about a device (the box's own log holds none)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT DISTINCT c.name FROM entries e JOIN chains c ON c.id = e.chain_id"
            " WHERE e.device_id IS NOT NULL"
        ).fetchall()
    conn.close()
    return {str(name) for (name,) in rows}


def test_a_run_leaves_a_verified_log_of_the_demos_customers(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    directory = tmp_path / "demo"
    assert run_demo(directory, tui=False, duration=3.0) == 0
    err = capfd.readouterr().err
    assert (directory / MARKER).is_file()
    db = directory / "data" / "einblick.db"
    assert "customer portal: https://127.0.0.1:" in err
    assert f"demo stopped; its log stays in {directory}" in err
    report = verify_db(db)
    assert report.ok and report.unsigned == 0, report.summary()  # stopped in order: all signed
    customers = _customers(db)
    assert customers and customers <= {customer for customer, _ in DEMO_DEVICES}
    with sqlite3.connect(db) as conn:
        first = conn.execute("SELECT count(*) FROM entries").fetchone()[0]
    conn.close()
    assert first > 0
