"""Fault suite: prints messages offered, forwarded, withheld, lost, duplicates and faults."""

from __future__ import annotations

import pytest

from tests.faults.summary import LONG, ROWS, format_rows


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not ROWS:
        return
    form = "long form (EINBLICK_FAULT_LONG=1)" if LONG else "short form"
    terminalreporter.section(f"Einblick fault suite, {form}")
    for line in format_rows(ROWS):
        terminalreporter.write_line(line)
