"""The deployment tests print where their time went (and save it under test-artifacts/deploy/)."""

from __future__ import annotations

import pytest

from tests.deploy.stack import ARTIFACTS, TIMINGS


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TIMINGS.rows:
        return
    report = TIMINGS.report()
    terminalreporter.section("where the deployment tests' time went")
    terminalreporter.write_line(report)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "timings.txt").write_text(report + "\n")
