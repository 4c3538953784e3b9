"""End-to-end fixtures: a real API (``python -m server``) and a real dashboard (``python -m dashboard``)
on free ports with a temporary data dir, and headless Chromium pages that record console errors.

Browser tests take ``explore`` (a fresh page at 1280x800) and end with ``explore.assert_clean()``.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.browser import ConsoleLog, console_page, launch, save_screenshot
from tests.processes import api_process, free_port, server_process


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def live_api(e2e_dir: Path) -> Iterator[str]:
    with api_process(e2e_dir / "data", e2e_dir / "logs") as url:
        yield url


@pytest.fixture(scope="session")
def live_dashboard(live_api: str, e2e_dir: Path) -> Iterator[str]:
    port = free_port()
    env = {
        "CONVLENS_API_URL": live_api,
        "CONVLENS_DASHBOARD_HOST": "127.0.0.1",
        "CONVLENS_DASHBOARD_PORT": str(port),
        "CONVLENS_DATA_DIR": str(e2e_dir / "data"),
        "CONVLENS_DASHBOARD_DEBUG": "false",
    }
    url = f"http://127.0.0.1:{port}"
    with server_process("dashboard", env, f"{url}/", e2e_dir / "logs" / f"dashboard-{port}.log", timeout=90):
        yield url


@pytest.fixture(scope="session")
def browser():
    if not shutil.which("chromium") and not Path("/usr/bin/chromium").exists():
        pytest.skip("chromium is not installed (make system-deps)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = launch(pw)
        try:
            yield b
        finally:
            b.close()


@dataclass
class LivePage:
    """A browser page on the dashboard, its console log and the URLs of both servers."""

    page: object
    console: ConsoleLog
    dashboard_url: str
    api_url: str

    def open(self, path: str = "/") -> None:
        self.page.goto(self.dashboard_url + path)

    def screenshot(self, name: str) -> Path:
        return save_screenshot(self.page, name)

    def assert_clean(self) -> None:
        assert self.console.errors == [], "browser console errors:\n" + "\n".join(self.console.errors)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def explore(
    request: pytest.FixtureRequest, browser, live_dashboard: str, live_api: str
) -> Iterator[LivePage]:
    with console_page(browser) as (page, console):
        yield LivePage(page, console, live_dashboard, live_api)
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed:  # what the page showed when the test failed
            save_screenshot(page, f"FAILED-{request.node.name}")
