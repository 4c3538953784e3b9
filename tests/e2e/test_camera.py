"""Explore's camera source in real headless Chromium with its fake camera: the frame gate's rule (a frame
that comes while one is in flight is dropped, not queued), then ten seconds of live frames from the fake
camera updating the predictions and the selected layer's grid, with a clean console: the first frame
through Dash, the next ones the live way (drawn by static/camera.js), and the last one through Dash
again when the camera stops, so that the page's components end showing it."""

from __future__ import annotations

import time

import pytest

from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, console_page, save_screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FAKE_CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
LAYER = "blocks.2"
LIVE_SECONDS = 10


@pytest.fixture(scope="module")
def camera_browser(browser):
    """A second Chromium from the session's Playwright, with a fake camera that needs no permission prompt."""
    b = browser.browser_type.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_CAMERA, headless=True)
    try:
        yield b
    finally:
        b.close()


@pytest.fixture
def camera_page(camera_browser, live_dashboard):
    with console_page(camera_browser, 60_000) as (page, console):
        yield page, console


GATE_RULE = """() => {
  let t = 0;
  const gate = new window.ConvLensCamera.FrameGate(() => t, 1000);
  const out = [];
  out.push(gate.offer());          // 1: sent
  t = 10; out.push(gate.offer());  // in flight: dropped
  t = 20; out.push(gate.offer());  // dropped again, not queued
  t = 120; out.push(gate.answer(1, true));
  out.push(gate.offer());          // 2: the next frame is the newest, nothing was queued
  t = 2000; out.push(gate.offer());  // 2 never answered within 1 s: given up, 3 sent
  out.push(gate.answer(2, true));  // a late answer to a frame given up on is ignored
  t = 2050; out.push(gate.answer(3, false));
  return {out: out, stats: gate.stats(), latencies: gate.latencies};
}"""


def test_frames_in_flight_drop_the_next_ones(camera_page, live_dashboard):
    page, console = camera_page
    page.goto(live_dashboard + "/")
    page.wait_for_function("() => window.ConvLensCamera && window.ConvLensCamera.FrameGate")
    got = page.evaluate(GATE_RULE)
    assert got["out"] == [1, None, None, True, 2, 3, False, True]
    assert got["latencies"] == [120, 50]  # frame 1 (0 -> 120 ms) and frame 3 (2000 -> 2050 ms)
    assert got["stats"] == {
        "sent": 3,
        "dropped": 2,
        "done": 2,
        "lost": 1,
        "failed": 1,
        "median_ms": 120,
        "p90_ms": 120,
    }
    assert console.errors == []


def test_the_fake_camera_drives_live_updates_for_ten_seconds(camera_page, live_dashboard):
    page, console = camera_page
    page.goto(f"{live_dashboard}/?model=efficientnet_lite0&layer={LAYER}")
    page.wait_for_selector("#model-weights-badge", timeout=120_000)
    page.click("#camera-toggle")
    page.wait_for_function(
        "() => window.ConvLensCamera.gate && window.ConvLensCamera.gate.done >= 1", timeout=120_000
    )
    # the first frame, through Dash (attached: once a live frame is drawn, the live grid stands in for it)
    page.wait_for_selector(f"#filter-grid-tiles[data-layer='{LAYER}']", state="attached")
    page.wait_for_function("() => window.ConvLensCamera.live >= 1", timeout=60_000)
    page.wait_for_selector(f"#camera-grid-tiles[data-layer='{LAYER}']")
    start = page.evaluate("() => window.ConvLensCamera.gate.stats()")
    sources = set()
    t0 = time.monotonic()
    while time.monotonic() - t0 < LIVE_SECONDS:
        sources.add(page.get_attribute("#camera-grid-tiles .cl-tile", "style"))
        page.wait_for_timeout(500)
    end = page.evaluate("() => window.ConvLensCamera.gate.stats()")
    answered = end["done"] - start["done"]
    # live, not fast: the frame rate is bench/bench_webcam.py's to measure (a loaded 2-core CPU answers ~1/s)
    assert answered >= 3, f"only {answered} frames answered in {LIVE_SECONDS} s: {end}"
    assert end["failed"] == 0 and end["lost"] == 0, end
    assert end["dropped"] > 0  # frames came faster than answers: dropped, not queued
    ways = page.evaluate("() => ({live: window.ConvLensCamera.live, dash: window.ConvLensCamera.dash})")
    assert ways["dash"] == 1 and ways["live"] >= answered, ways  # only the first went through Dash
    assert len(sources) >= 2  # the grid's mosaic changed with the frames, in place
    # the live elements stand in for the callback-written ones
    assert page.is_visible("#camera-grid-tiles") and not page.is_visible("#filter-grid-tiles")
    assert page.is_visible("#camera-top1") and not page.is_visible("#top1")
    assert page.inner_text("#camera-top1").startswith("Top-1 ")
    assert page.get_attribute("#camera-preview", "src").startswith("/api-artifacts/")
    n_tiles = page.eval_on_selector_all("#filter-grid-tiles .cl-tile", "els => els.length")
    assert page.eval_on_selector_all("#camera-grid-tiles .cl-tile", "els => els.length") == n_tiles
    assert "frames/s" in page.inner_text("#camera-stats")
    save_screenshot(page, "explore-camera")
    # stopping: the newest frame shown goes through Dash, and the page's own components show it
    page.click("#camera-toggle")
    page.wait_for_function("() => !window.ConvLensCamera.stream")
    last = page.get_attribute("#camera-grid-tiles .cl-tile", "style")
    page.wait_for_function("() => !document.body.classList.contains('cl-camera-live')", timeout=60_000)
    assert page.get_attribute("#filter-grid-tiles .cl-tile", "style") == last
    assert page.is_visible("#filter-grid-tiles") and not page.is_visible("#camera-grid-tiles")
    assert page.inner_text("#top1-label")
    assert console.errors == [], "browser console errors:\n" + "\n".join(console.errors)
