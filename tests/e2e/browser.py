"""Headless Chromium for the browser tests and the dashboard benchmark (the system's /usr/bin/chromium)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from playwright.sync_api import Browser, ConsoleMessage, Page, Playwright

from server.config import REPO_ROOT

CHROMIUM = os.environ.get("CONVLENS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1280, "height": 800}  # the size the dashboard must stay readable at
# Tests write screenshots here only (git-ignored); `make screenshots` copies the README's to docs/screenshots/.
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screenshots"


def launch(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


@dataclass
class ConsoleLog:
    """Errors the page reported: console.error calls, uncaught exceptions and failed loads."""

    errors: list[str] = field(default_factory=list)

    def attach(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))

    def _on_console(self, msg: ConsoleMessage) -> None:
        if msg.type == "error":
            self.errors.append(f"console.error: {msg.text} ({msg.location.get('url', '')})")


def save_screenshot(page: Page, name: str) -> Path:
    """Save ``test-artifacts/screenshots/<name>.png`` (never a tracked file)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


@contextmanager
def console_page(browser: Browser, timeout_ms: int = 30_000) -> Iterator[tuple[Page, ConsoleLog]]:
    """A fresh page at VIEWPORT in its own context, recording its console errors; the context closes on exit."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        console = ConsoleLog()
        console.attach(page)
        yield page, console
    finally:
        context.close()
