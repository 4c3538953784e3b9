"""The neuron page in real headless Chromium: one filter of digits_cnn opened from its URL, every section
filled by its jobs, the next filter, and a channel out of range."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ALL_LOADED = (
    "(sel) => { const imgs = Array.from(document.querySelectorAll(sel));"
    " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }"
)


def test_neuron_page_opens_from_its_url_and_steps_to_the_next_filter(explore):
    page = explore.page
    explore.open("/neuron/digits_cnn/features.3/5")
    assert "features.3 · filter 5" in page.wait_for_selector("#neuron-title").inner_text()
    # top 9 of the built-in digits, each image next to its deconvnet crop
    page.wait_for_selector("#neuron-top-grid .cl-top-tile", timeout=120_000)
    assert page.locator("#neuron-top-grid .cl-top-tile").count() == 9
    page.wait_for_function(ALL_LOADED, arg="#neuron-top-grid img", timeout=60_000)
    assert page.locator("#neuron-top-grid img").count() == 18
    # DeepVis for both presets
    page.wait_for_function(ALL_LOADED, arg="#neuron-deepvis-deepvis, #neuron-deepvis-lucid", timeout=120_000)
    assert page.locator("#neuron-deepvis img").count() == 2
    # the audit's statistics and flags, the weights, the correlated filters
    page.wait_for_selector("#neuron-stats-list", timeout=180_000)
    assert "positive on" in page.inner_text("#neuron-stats-list")
    assert page.wait_for_selector("#neuron-flag-list").inner_text().strip()
    page.wait_for_selector("#detail-weights-graph .main-svg", timeout=60_000)
    page.wait_for_selector("#neuron-correlated-list li", timeout=60_000)
    assert page.locator("#neuron-correlated-list li").count() == 5
    assert "r = " in page.inner_text("#neuron-correlated-list")
    page.locator("#neuron-panel-top").scroll_into_view_if_needed()
    explore.screenshot("neuron-page")
    explore.assert_clean()

    page.click("#neuron-next")
    page.wait_for_function("location.pathname === '/neuron/digits_cnn/features.3/6'", timeout=30_000)
    page.wait_for_function(
        "document.querySelector('#neuron-index') && document.querySelector('#neuron-index').innerText === '6'",
        timeout=60_000,
    )
    page.wait_for_selector("#neuron-top-grid .cl-top-tile", timeout=120_000)
    assert page.get_attribute("#neuron-prev", "href") == "/neuron/digits_cnn/features.3/5"
    explore.assert_clean()


def test_a_channel_out_of_range_shows_a_message(explore):
    page = explore.page
    explore.open("/neuron/digits_cnn/features.3/32")
    alert = page.wait_for_selector("#neuron-error [role=alert]", timeout=60_000)
    assert "there is no filter '32'" in alert.inner_text() and "0 to 31" in alert.inner_text()
    assert page.locator("#neuron-top-grid .cl-top-tile").count() == 0
    assert not page.is_visible("#neuron-sections")
    explore.screenshot("neuron-bad-channel")
    explore.assert_clean()
