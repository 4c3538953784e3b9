"""The static microscope in real headless Chromium, opened from disk (file://, no server): the front page,
a layer's index and filter pages, every image loaded, the links followed, and a clean console."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.config import Settings
from server.microscope import MicroscopeRequest
from server.services import Services
from tests.e2e.browser import ConsoleLog, console_page, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BROKEN = "() => Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from server.config import REPO_ROOT

    root = tmp_path_factory.mktemp("microscope")
    settings = Settings(data_dir=root / "data", models_dir=REPO_ROOT / "models", preload_default_model=False)
    req = MicroscopeRequest("digits_cnn", "digits", ("features.3", "features.6"), filters=8, steps=16)
    return Services.from_settings(settings).microscope.export(req, root / "site").out


def _open(page, console: ConsoleLog, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    assert page.evaluate("() => document.images.length") > 0, url
    assert page.evaluate(BROKEN) == [], f"broken images on {url}"
    assert console.errors == [], "browser console errors:\n" + "\n".join(console.errors)


def test_the_exported_site_opens_from_disk_with_every_image(browser, site: Path):
    with console_page(browser) as (page, console):
        page.goto((site / "index.html").as_uri())
        assert console.errors == []
        assert "ConvLens microscope: digits_cnn" in page.inner_text("h1")
        page.click("text=features.6")
        _open(page, console, page.url)
        assert page.locator(".grid figure").count() == 8
        save_screenshot(page, "microscope-layer-index")
        page.click("a[href='filter_2.html'] >> nth=0")
        page.wait_for_load_state("load")
        assert page.inner_text("#filter-index") == "2"
        _open(page, console, page.url)
        assert page.locator("#top img").count() == 18 and page.locator("#deepvis img").count() == 2
        assert "Weights of features.5" in page.inner_text("#weights")
        assert "positive on" in page.inner_text("#stats")
        save_screenshot(page, "microscope-filter-page")
        page.click("#next")
        page.wait_for_load_state("load")
        assert page.inner_text("#filter-index") == "3"
        for layer in ("features.3", "features.6"):  # every page of the site
            for path in sorted((site / layer).glob("*.html")):
                _open(page, console, path.as_uri())
