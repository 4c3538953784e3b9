"""Explore's camera source end to end (issue 17: aim >= 5 frames/s with efficientnet_lite0 on this CPU): real
API and dashboard processes, headless Chromium with its fake camera, frames sent one at a time by
static/camera.js (the ones that come while one is in flight are dropped). Prints frames answered per second
and the latency from capture to the answer on the page for the two ways a frame can take, interleaved in
one run (rounds alternate): live (``POST /camera/frame``, drawn by camera.js; the default) and every frame
through Dash (``ConvLensCamera.liveFrames = false``, the way all frames took before). Against the baseline
in the same run: the same frames' API calls (activations with the predictions, the mosaic) made directly,
with no browser or dashboard.

Run: .venv/bin/python bench/bench_webcam.py [--seconds 15] [--rounds 3] [--layer blocks.2] [--model efficientnet_lite0]
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


def measure(page, seconds: float, live: bool) -> dict:
    """One round: start the camera with frames taking one way, skip three warm-up frames, count for
    ``seconds``, stop (and wait for the last live frame to be through Dash)."""
    page.evaluate(f"() => {{ window.ConvLensCamera.liveFrames = {'true' if live else 'false'}; }}")
    before = page.evaluate("() => window.ConvLensCamera.startedAt")
    page.click("#camera-toggle")
    page.wait_for_function(
        f"() => window.ConvLensCamera.startedAt !== {before} && window.ConvLensCamera.gate.done >= 3",
        timeout=120_000,
    )
    start = page.evaluate("() => window.ConvLensCamera.gate.stats()")
    page.evaluate("() => { window.ConvLensCamera.gate.latencies = []; }")
    server_from = len(page.evaluate("() => window.ConvLensCamera.serverMs"))
    t0 = time.perf_counter()
    page.wait_for_timeout(seconds * 1000)
    end = page.evaluate("() => window.ConvLensCamera.gate.stats()")
    elapsed = time.perf_counter() - t0
    server_ms = page.evaluate(f"() => window.ConvLensCamera.serverMs.slice({server_from})")
    ways = page.evaluate("() => ({live: window.ConvLensCamera.live, dash: window.ConvLensCamera.dash})")
    page.click("#camera-toggle")
    page.wait_for_function(
        "() => !window.ConvLensCamera.stream && !document.body.classList.contains('cl-camera-live')",
        timeout=120_000,
    )
    return {
        "fps": (end["done"] - start["done"]) / elapsed,
        "median_ms": end["median_ms"],
        "p90_ms": end["p90_ms"],
        "dropped": end["dropped"] - start["dropped"],
        "failed": end["failed"],
        "server_ms": statistics.median(server_ms) if server_ms else float("nan"),
        "ways": ways,
    }


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=15)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--layer", default="blocks.2")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    runs: dict[str, list[dict]] = {"live": [], "dash": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with api_and_dashboard(tmp_path, CONVLENS_DASHBOARD_DEBUG="false") as (api_url, dash_url):
            with sync_playwright() as pw, ExitStack() as stack:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + FAKE_CAMERA)
                stack.callback(browser.close)
                page, console = stack.enter_context(console_page(browser, 120_000))
                page.goto(f"{dash_url}/?model={args.model}&layer={args.layer}")
                page.wait_for_selector("#model-weights-badge", timeout=120_000)
                for way in (
                    "live",
                    "dash",
                ):  # warm-up, not counted: the API's first forwards, Plotly's first draws
                    measure(page, 3, way == "live")
                for i in range(args.rounds):
                    for way in ("live", "dash") if i % 2 == 0 else ("dash", "live"):
                        r = measure(page, args.seconds, way == "live")
                        runs[way].append(r)
                        print(
                            f"round {i + 1} {way:4}: {r['fps']:.2f} frames/s, capture -> page median "
                            f"{r['median_ms']:.0f} ms, p90 {r['p90_ms']:.0f} ms; dashboard's part "
                            f"{r['server_ms']:.0f} ms; {r['dropped']} dropped while one was in flight, "
                            f"{r['failed']} failed; answered live/through Dash {r['ways']}; "
                            f"load {os.getloadavg()[0]:.2f}",
                            flush=True,
                        )
                page.click("#camera-toggle")
                page.wait_for_function("() => window.ConvLensCamera.gate.done >= 3")
                frames: list[bytes] = []
                while len(frames) < 10:  # distinct frames: a repeated one would be the API's cache hit
                    grabbed = base64.b64decode(page.evaluate(GRAB).split(",", 1)[1])
                    if grabbed not in frames:
                        frames.append(grabbed)
                    page.wait_for_timeout(50)
                page.click("#camera-toggle")
            direct = [direct_api(api_url, jpeg, args.layer, args.model, combined=True) for jpeg in frames]
    fps = {way: [r["fps"] for r in rs] for way, rs in runs.items()}
    lat = {way: [float(r["median_ms"]) for r in rs] for way, rs in runs.items()}
    print(f"{args.model} {args.layer}, {args.rounds} rounds of {args.seconds:.0f} s each way, alternating:")
    for way, label in (("live", "live (POST /camera/frame)"), ("dash", "every frame through Dash")):
        print(f"  {label}: frames/s {spread(fps[way])}; capture -> page ms {spread(lat[way])}")
    ratio = statistics.median(fps["live"]) / statistics.median(fps["dash"])
    print(f"live / through Dash, frames/s medians: {ratio:.2f}x")
    med = statistics.median(direct)
    print(
        f"baseline, the same frames straight to the API (activations with top_k, mosaic GET): median "
        f"{med:.0f} ms per frame ({1000 / med:.2f} frames/s); live end to end / API = "
        f"{statistics.median(lat['live']) / med:.2f}x"
    )
    print(f"console errors: {len(console.errors)}")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"target >= 5 frames/s (live, median): {'met' if statistics.median(fps['live']) >= 5 else 'missed'}"
    )


if __name__ == "__main__":
    main()
