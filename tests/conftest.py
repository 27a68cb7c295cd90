"""Fixtures shared by every test: real Mosquitto brokers on loopback, one per test. And the
fault suite's summary table, printed at the end of the run."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from pathlib import Path

import orjson
import pytest

from gateway.devices.broker import Mosquitto
from gateway.devices.broker_files import AclRule, MosquittoSettings
from gateway.devices.ports import free_port
from tests.faults.summary import LONG, ROWS, Row, format_rows

BrokerFactory = Callable[..., Awaitable[Mosquitto]]


@pytest.fixture
async def brokers(tmp_path: Path) -> AsyncIterator[BrokerFactory]:
    """Start real Mosquitto processes on free loopback ports; all are stopped at teardown."""
    started: list[Mosquitto] = []

    async def start(
        name: str = "broker", *, anonymous: bool = True, rules: list[AclRule] | None = None
    ) -> Mosquitto:
        broker = Mosquitto(
            MosquittoSettings(directory=tmp_path / name, port=free_port(), anonymous=anonymous)
        )
        broker.write_files(rules or [])
        await broker.start()
        started.append(broker)
        return broker

    yield start
    for broker in started:
        await broker.stop()


# The fault suite's rows (tests/faults/summary.py). The suite runs on pytest-xdist workers: a
# scenario's row is recorded in the worker that ran it, so it travels to the terminal with the
# test's report (its user properties, which xdist carries to the controller). These hooks live
# here, not in tests/faults/conftest.py, because the controller loads only this conftest.
_FAULT_ROW = "einblick-fault-row"
_FAULT_ROWS: list[Row] = []


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport() -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    while ROWS:
        row = orjson.dumps(dataclasses.asdict(ROWS.pop(0))).decode()
        report.user_properties.append((_FAULT_ROW, row))
    return report


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    # Runs where the summary is printed: in the one process without xdist, in the controller
    # (for every report a worker sends) with it.
    for key, value in report.user_properties:
        if key == _FAULT_ROW:
            _FAULT_ROWS.append(Row(**orjson.loads(value)))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _FAULT_ROWS:
        return
    form = "long form (EINBLICK_FAULT_LONG=1)" if LONG else "short form"
    terminalreporter.section(f"Einblick fault suite, {form}")
    for line in format_rows(_FAULT_ROWS):
        terminalreporter.write_line(line)
