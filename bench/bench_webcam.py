"""Explore's camera source end to end (issue 17: aim >= 5 frames/s with efficientnet_lite0 on this CPU): real
API and dashboard processes, headless Chromium with its fake camera, frames sent one at a time by
static/camera.js (the ones that come while one is in flight are dropped). Prints frames answered per second
and the latency from capture to the answer on the page, against the baseline in the same run: the same
frames' API calls (activations with the predictions, the mosaic) made directly, with no browser or dashboard.

Run: .venv/bin/python bench/bench_webcam.py [--seconds 20] [--layer blocks.2] [--model efficientnet_lite0]
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_dashboard import direct_api
from tests.e2e.browser import CHROMIUM, CHROMIUM_ARGS, console_page
from tests.processes import api_and_dashboard

FAKE_CAMERA = ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
GRAB = """() => { const v = document.getElementById('camera-video'); const c = document.createElement('canvas');
  c.width = 224; c.height = 224; const s = Math.min(v.videoWidth, v.videoHeight);
  c.getContext('2d').drawImage(v, (v.videoWidth - s) / 2, (v.videoHeight - s) / 2, s, s, 0, 0, 224, 224);
  return c.toDataURL('image/jpeg', 0.8); }"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--layer", default="blocks.2")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with api_and_dashboard(tmp_path, CONVLENS_DASHBOARD_DEBUG="false") as (api_url, dash_url):
            with sync_playwright() as pw, ExitStack() as stack:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_CAMERA)
                stack.callback(browser.close)
                page, console = stack.enter_context(console_page(browser, 120_000))
                page.goto(f"{dash_url}/?model={args.model}&layer={args.layer}")
                page.wait_for_selector("#model-weights-badge", timeout=120_000)
                page.click("#camera-toggle")
                page.wait_for_function(
                    "() => window.ConvLensCamera.gate && window.ConvLensCamera.gate.done >= 3"
                )
                start = page.evaluate(
                    "() => window.ConvLensCamera.gate.stats()"
                )  # warm-up frames not counted
                page.evaluate("() => { window.ConvLensCamera.gate.latencies = []; }")
                t0 = time.perf_counter()
                page.wait_for_timeout(args.seconds * 1000)
                end = page.evaluate("() => window.ConvLensCamera.gate.stats()")
                elapsed = time.perf_counter() - t0
                server_ms = page.evaluate("() => window.ConvLensCamera.serverMs.slice(3)")
                frames: list[bytes] = []
                while len(frames) < 10:  # distinct frames: a repeated one would be the API's cache hit
                    grabbed = base64.b64decode(page.evaluate(GRAB).split(",", 1)[1])
                    if grabbed not in frames:
                        frames.append(grabbed)
                    page.wait_for_timeout(50)
                page.click("#camera-toggle")
            direct = [direct_api(api_url, jpeg, args.layer, args.model, combined=True) for jpeg in frames]
    done = end["done"] - start["done"]
    fps = done / elapsed
    print(
        f"{args.model} {args.layer}: {done} frames answered in {elapsed:.1f} s = {fps:.2f} frames/s; "
        f"latency capture -> page median {end['median_ms']:.0f} ms, p90 {end['p90_ms']:.0f} ms; "
        f"{end['dropped'] - start['dropped']} frames dropped while one was in flight, {end['failed']} failed"
    )
    print(
        f"the dashboard's part (frame in -> one API call -> figure and grid out): median "
        f"{statistics.median(server_ms):.0f} ms; the rest is the browser (Dash round trip, Plotly, the grid)"
    )
    med = statistics.median(direct)
    print(
        f"baseline, the same frames straight to the API (activations with top_k, mosaic GET): median {med:.0f} ms per frame ({1000 / med:.2f} frames/s); "
        f"end to end / API = {end['median_ms'] / med:.2f}x"
    )
    print(f"console errors: {len(console.errors)}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"target >= 5 frames/s: {'met' if fps >= 5 else 'missed'}")


if __name__ == "__main__":
    main()
