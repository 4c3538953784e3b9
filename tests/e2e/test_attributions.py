"""Filter insights in real headless Chromium: the four maps side by side, a live DeepVis run, top-9."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e

VIEW = "/?model=digits_cnn&image=sample:digit3&layer=features.3&filter=5"
LOADED = "el => el.complete && el.naturalWidth > 0"


def test_maps_side_by_side_and_a_live_deepvis_run(explore):
    explore.open(VIEW)
    explore.page.wait_for_selector("#filter-detail:not([hidden])")
    for method in ("activation", "deconvnet", "guided_backprop", "gradcam"):
        img = explore.page.wait_for_selector(f"#attr-img-{method}", timeout=60_000)
        explore.page.wait_for_function(f"document.getElementById('attr-img-{method}').naturalWidth > 0")
        assert img.get_attribute("src").startswith("/api-artifacts/")
    explore.page.fill("#deepvis-steps", "24")
    explore.page.click("#deepvis-start")
    explore.page.wait_for_function(
        "document.getElementById('deepvis-status').innerText.startsWith('Done')", timeout=60_000
    )
    # the final image's src arrives with 'Done'; the browser then loads it (the same expectation, no race)
    explore.page.wait_for_function(f"({LOADED})(document.getElementById('deepvis-image'))")
    assert explore.page.eval_on_selector("#deepvis-image", LOADED)
    assert float(explore.page.get_attribute("#deepvis-progress", "value")) == pytest.approx(1.0)
    explore.screenshot("filter-insights-digits")
    explore.assert_clean()


@pytest.mark.slow
def test_lucid_class_image_on_lite0_shows_the_second_opinion_verdict(explore):
    """Issue 11: the DeepVis panel on the default ImageNet model renders a lucid class image (goldfish) at
    224 px and shows the second model's verdict and top 5 next to it."""
    explore.open("/?model=efficientnet_lite0&image=sample:chelsea&layer=blocks.5&filter=7")
    explore.page.wait_for_selector("#filter-detail:not([hidden])", timeout=90_000)
    explore.page.click("#deepvis-target >> text=class")
    explore.page.fill("#deepvis-class", "1")
    explore.page.click("#deepvis-preset")
    explore.page.click("text=lucid (FFT, decorrelated colour, jitter/scale/rotate)")
    explore.page.fill("#deepvis-steps", "128")
    explore.page.click("#deepvis-start")
    explore.page.wait_for_function(
        "document.getElementById('deepvis-status').innerText.startsWith('Done')", timeout=600_000
    )
    explore.page.wait_for_function(f"({LOADED})(document.getElementById('deepvis-image'))")
    card = explore.page.wait_for_selector("#deepvis-verdict-card", timeout=30_000)
    text = card.inner_text()
    assert "robust feature" in text, text
    assert "efficientnet_lite1" in text and "goldfish" in text
    assert (
        explore.page.eval_on_selector("#deepvis-verdict-card strong", "e => e.className")
        == "cl-verdict-robust"
    )
    assert len(explore.page.query_selector_all("#deepvis-verdict-card ol li")) == 5
    explore.page.eval_on_selector("#deepvis-image", "e => e.scrollIntoView({block: 'center'})")
    explore.screenshot("deepvis-lite0-verdict")
    explore.assert_clean()
