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
