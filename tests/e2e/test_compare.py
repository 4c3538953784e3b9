"""The compare page in real headless Chromium: digits_cnn's epoch_01 and final checkpoints on a digit with the
filters that changed most, and Lite0 against Lite1 with the CKA map of their layers."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ALL_LOADED = (
    "(sel) => { const imgs = Array.from(document.querySelectorAll(sel));"
    " return imgs.length > 0 && imgs.every(i => i.complete && i.naturalWidth > 0); }"
)
TILES_DRAWN = (
    "(sel) => { const t = document.querySelector(sel);"
    " return t && getComputedStyle(t).backgroundImage.startsWith('url('); }"
)

PICKERS_SHOW = (
    "(want) => Object.entries(want).every(([sel, text]) =>"
    " (document.querySelector(sel)?.innerText || '').includes(text))"
)


def pickers_show(page, want: dict[str, str]) -> None:
    """Wait until each picker (a CSS selector) shows its text: the page's callbacks have filled them."""
    page.wait_for_function(PICKERS_SHOW, arg=want, timeout=60_000)


def test_compare_on_digits_cnns_epoch_01_and_final_checkpoints_lists_changed_filters(explore):
    page = explore.page
    explore.open("/compare")
    pickers_show(page, {"#compare-checkpoint-a": "epoch_01", "#compare-checkpoint-b": "final"})
    page.click("#compare-run")
    page.wait_for_selector("#compare-changed-list li", timeout=60_000)
    assert page.inner_text("#compare-label-a") == "digits_cnn:epoch_01"
    assert page.inner_text("#compare-label-b") == "digits_cnn:final"
    assert page.inner_text("#compare-top1-b").startswith("top-1: 3")
    assert page.locator("#compare-grid-a .cl-tile").count() == 32  # features.3 of both
    assert page.locator("#compare-grid-b .cl-tile").count() == 32
    page.wait_for_function(TILES_DRAWN, arg="#compare-grid-b .cl-tile", timeout=30_000)
    cards = page.locator("#compare-changed-list > li")
    assert cards.count() == 8
    assert "filter" in cards.first.inner_text() and "moved" in cards.first.inner_text()
    page.wait_for_function(ALL_LOADED, arg="#compare-changed-list img", timeout=60_000)
    assert page.locator("#compare-changed-list img").count() == 16  # a map before and after each
    assert page.locator("#compare-changed-list .cl-changed-weights .main-svg").count() >= 16
    explore.screenshot("compare-checkpoints")
    page.evaluate("document.querySelector('#panel-compare-changed').scrollIntoView({block: 'start'})")
    explore.screenshot("compare-checkpoints-changed")
    explore.assert_clean()


def test_compare_on_two_lite_models_shows_the_cka_map(explore):
    page = explore.page
    explore.open("/compare?mode=models")
    pickers_show(
        page,
        {
            "#compare-model-b": "efficientnet_lite1",
            "#compare-dataset": "lfw_subset",
            "#compare-layer-b": "blocks.3",
        },
    )
    page.click("#compare-run")
    page.wait_for_selector("#compare-top1-b", timeout=90_000)
    assert page.inner_text("#compare-label-a") == "efficientnet_lite0:weights"
    assert page.inner_text("#compare-label-b") == "efficientnet_lite1:weights"
    assert "cat" in page.inner_text("#compare-top1-a") and "cat" in page.inner_text("#compare-top1-b")
    assert page.locator("#compare-grid-a .cl-tile").count() == 80  # blocks.3 of Lite0
    assert "pick two checkpoints" in page.inner_text("#compare-changed")

    page.click("#compare-cka-run")
    page.wait_for_selector("#compare-cka-matches li", timeout=180_000)
    assert "Done: 10 × 10 layers over 48 images" in page.inner_text("#compare-cka-status")
    assert "conv_stem ↔ conv_stem" in page.inner_text("#compare-cka-matches")
    assert page.locator("#compare-cka-graph .heatmaplayer").count() == 1
    page.evaluate("document.querySelector('#panel-compare-cka').scrollIntoView({block: 'start'})")
    explore.screenshot("compare-models-cka")
    page.evaluate("window.scrollTo(0, 0)")
    explore.screenshot("compare-models")
    explore.assert_clean()
