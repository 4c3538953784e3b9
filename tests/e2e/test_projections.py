"""The projections page in real headless Chromium: the perplexity slider moves the points, hover shows a thumbnail."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SCATTER = "#proj-scatter .js-plotly-plot"
ITERATION = "document.querySelector('#proj-status').innerText.match(/iteration ([0-9]+)/)[1]"
FIRST_X = f"document.querySelector('{SCATTER}').data.flatMap(t => Array.from(t.x)).slice(0, 50).join(',')"


def wait_for_points(page, timeout: float = 180_000) -> str:
    page.wait_for_function(
        f"(() => {{ const g = document.querySelector('{SCATTER}');"
        " return g && g.data && g.data.length >= 10 && g.data[0].x && g.data[0].x.length > 0; })()",
        timeout=timeout,
    )
    return page.evaluate(FIRST_X)


def test_perplexity_slider_moves_the_points_and_hover_shows_a_thumbnail(explore):
    page = explore.page
    explore.open("/projections?dataset=digits&model=digits_cnn&layer=classifier.2")
    page.wait_for_function(
        "document.querySelector('#proj-layer') && document.querySelector('#proj-layer').innerText.includes('classifier.2')",
        timeout=60_000,
    )
    page.wait_for_selector("#proj-params .cl-param")  # the method's controls came from the API
    page.fill("""#proj-params input[id*='"name":"n_iter"']""", "3000")  # long enough to steer while it runs
    page.keyboard.press("Tab")
    page.click("#proj-run")
    before = wait_for_points(page)
    page.wait_for_function("document.querySelector('#proj-status').innerText.includes('perplexity 30')")
    iteration_before = int(page.evaluate(ITERATION))

    # Move the perplexity slider: a click on its track, 15% from the left end (about 17).
    page.locator("#proj-perplexity").scroll_into_view_if_needed()  # the form is taller than the window
    track = page.locator("#proj-perplexity .dash-slider-track").bounding_box()
    page.mouse.click(track["x"] + track["width"] * 0.15, track["y"] + track["height"] / 2)
    page.wait_for_function(
        "(() => { const m = document.querySelector('#proj-status').innerText.match(/perplexity ([0-9.]+)/);"
        " return m && Number(m[1]) < 25; })()",
        timeout=60_000,
    )
    page.wait_for_function(f"{FIRST_X} !== {before!r}", timeout=60_000)
    assert page.evaluate(FIRST_X) != before
    assert int(page.evaluate(ITERATION)) > iteration_before  # the same run went on: nothing restarted
    assert page.locator(".cl-alert-error").count() == 0

    # Hover one point (an SVG marker): its thumbnail and label appear.
    point = page.locator("#proj-scatter .scatterlayer .trace:first-child path.point").first
    point.hover(force=True)
    thumb = page.wait_for_selector("#proj-hover-thumb", timeout=30_000)
    assert thumb.get_attribute("src").startswith("data:image/png;base64,")
    assert "label" in page.inner_text("#proj-hover")
    page.evaluate(
        "document.querySelectorAll('.cl-col, .cl-main').forEach(e => e.scrollTop = 0); window.scrollTo(0, 0)"
    )
    explore.screenshot("projections-tsne")
    page.click("#proj-stop")
    explore.assert_clean()


def test_cautions_stability_noise_baseline_faithfulness_guidance_and_sweep(explore):
    page = explore.page
    explore.open("/projections?dataset=digits&model=digits_cnn&layer=classifier.2")
    page.wait_for_function(
        "document.querySelector('#proj-layer') && document.querySelector('#proj-layer').innerText.includes('classifier.2')",
        timeout=60_000,
    )
    page.wait_for_selector("#proj-params .cl-param")
    # the form shows the perplexity range that suits N, with its reason
    page.wait_for_selector("#proj-guidance-text", timeout=60_000)
    guide = page.inner_text("#proj-guidance-text")
    assert "N = 1,797" in guide and "N / 3" in guide
    # short runs: six t-SNE runs of the 1,797 digits (3 seeds, the noise baseline, a sweep of 2)
    page.fill("""#proj-params input[id*='"name":"early_exaggeration_iter"']""", "50")
    page.keyboard.press("Tab")
    page.fill("""#proj-params input[id*='"name":"n_iter"']""", "100")
    page.keyboard.press("Tab")

    # bad input: a visible message, no job
    page.fill("#proj-seeds", "0, x")
    page.click("#proj-run")
    page.wait_for_selector("#proj-error .cl-alert-error", timeout=30_000)
    assert "'x' is not a number" in page.inner_text("#proj-error")

    page.fill("#proj-seeds", "0, 1, 2")
    page.check("#proj-baseline input[type=checkbox]")
    page.fill("#proj-perplexities", "10, 50")
    page.click("#proj-run")
    for graph in ("#proj-stability", "#proj-baseline", "#proj-sweep"):
        page.wait_for_selector(f"{graph} .js-plotly-plot .scatterlayer", state="attached", timeout=480_000)
    assert page.locator("#proj-error .cl-alert-error").count() == 0
    stability = page.inner_text("#proj-stability-text")
    assert "mean 10-NN Jaccard" in stability and "3 seeds" in stability
    panels = page.evaluate("document.querySelector('#proj-stability .js-plotly-plot').data.length")
    assert panels == 3
    assert "Hopkins" in page.inner_text("#proj-baseline-text")
    assert "Spearman" in page.inner_text("#proj-faithfulness")
    assert page.evaluate("document.querySelector('#proj-sweep .js-plotly-plot').data.length") == 2
    page.locator("#panel-proj-cautions").scroll_into_view_if_needed()
    explore.screenshot("projections-cautions")
    explore.assert_clean()
