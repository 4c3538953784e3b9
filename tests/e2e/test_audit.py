"""The audit page in real headless Chromium: run an audit, see the table and heat map, open a flagged filter."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def test_run_an_audit_and_open_a_flagged_filter(explore):
    page = explore.page
    explore.open("/audit?model=digits_cnn&dataset=digits")
    page.wait_for_selector("#audit-thresholds input", state="attached", timeout=60_000)  # from the API
    page.wait_for_function(
        "document.querySelector('#audit-model') && document.querySelector('#audit-model').innerText.includes('digits_cnn')"
    )
    page.fill("#audit-fail-on", "dead>5%")
    page.keyboard.press("Tab")
    page.click("#audit-run")
    page.wait_for_selector("#audit-layer-table", timeout=180_000)
    badges = page.inner_text("#audit-summary-badges")
    assert "dead" in badges and "dead>5%: FAILED" in badges  # digits_cnn really has dead units
    page.wait_for_selector("#audit-heatmap .js-plotly-plot .heatmaplayer", timeout=60_000)
    # sparsity over depth (two curves) and per filter; the strided layers with their worst maps
    page.wait_for_selector(
        "#audit-sparsity .js-plotly-plot .scatterlayer .trace:nth-child(2)", timeout=60_000
    )
    page.wait_for_selector("#audit-sparsity-filters .js-plotly-plot .barlayer", timeout=60_000)
    board = page.inner_text("#audit-checkerboard")
    assert "features.4" in board and "2x2 / 2x2 (pool)" in board and "even" in board
    page.wait_for_function(
        "(() => { const m = Array.from(document.querySelectorAll('.cl-checker-map'));"
        " return m.length >= 3 && m.every(i => i.complete && i.naturalWidth > 0); })()",
        timeout=60_000,
    )
    page.locator("#panel-audit-sparsity").scroll_into_view_if_needed()
    explore.screenshot("audit-sparsity-checkerboard")

    page.click(".cl-audit-flag >> nth=0")
    page.wait_for_selector("#audit-filter-detail", timeout=60_000)
    detail = page.inner_text("#audit-filter-detail")
    assert "filter" in detail and "positive on" in detail
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.cl-audit-thumb')).every(i => i.complete && i.naturalWidth > 0)"
    )
    href = page.get_attribute("#audit-explore-link", "href")
    assert href.startswith("/?model=digits_cnn&image=upload:") and "&layer=" in href and "&filter=" in href
    assert page.get_attribute("#audit-neuron-link", "href").startswith("/neuron/digits_cnn/")

    page.click("#audit-compare")  # the digits snapshots are preselected
    page.wait_for_function(
        "document.querySelector('#audit-cmp-status').innerText.includes('did not change')", timeout=60_000
    )
    explore.screenshot("audit-digits")
    explore.assert_clean()
