"""Dashboard benchmark (issue 3): time from an upload to the filter grid being visible in the browser,
and the share of that time spent in the API. Measured in one run against real processes:

- a real API (``python -m server``) and dashboard (``python -m dashboard``) on free ports, headless
  Chromium at 1280x800;
- every upload is a new image (a seeded random crop of a bundled photo), so no API cache helps;
- "grid visible" = every tile of the new layer view is in the DOM and the mosaic PNG they are cut
  from has been loaded by the browser;
- the API share on that path = the dashboard's API calls (the upload check, the activations call),
  timed by the dashboard's API client and reported in the page, plus the mosaic PNG request;
- baseline, same run: the same API calls made directly with httpx (what the view costs with no
  dashboard and no browser), giving the dashboard's overhead ratio.

Run: ``.venv/bin/python bench/bench_dashboard.py [--repeats N]``.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.e2e.browser import VIEWPORT, ConsoleLog, launch
from tests.processes import api_and_dashboard

MODEL = "efficientnet_lite0"
LAYERS = ["blocks.3", "conv_head"]  # 80 channels of 14x14; 1280 channels of 7x7
PHOTOS = ["chelsea", "coffee", "astronaut", "rocket"]

GRID_READY = """([previous]) => {
    const tile = document.querySelector('#filter-grid-tiles .cl-tile');
    if (!tile) return false;
    const m = /url\\("?([^")]+)"?\\)/.exec(tile.style.backgroundImage);
    if (!m || m[1] === previous) return false;
    const url = new URL(m[1], location.href).href;
    const loaded = performance.getEntriesByName(url).length > 0;
    return loaded ? m[1] : false;
}"""


def unique_photos(n: int, seed: int = 0) -> list[bytes]:
    """n different JPEGs: seeded random 85% crops of the bundled photos."""
    from skimage import data

    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        arr = getattr(data, PHOTOS[i % len(PHOTOS)])()
        h, w = arr.shape[:2]
        ch, cw = int(h * 0.85), int(w * 0.85)
        y, x = int(rng.integers(0, h - ch)), int(rng.integers(0, w - cw))
        buf = io.BytesIO()
        Image.fromarray(arr[y : y + ch, x : x + cw]).convert("RGB").save(buf, format="JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def first_tile_mosaic(page) -> str | None:
    return page.evaluate(
        """() => { const t = document.querySelector('#filter-grid-tiles .cl-tile');
        if (!t) return null; const m = /url\\("?([^")]+)"?\\)/.exec(t.style.backgroundImage);
        return m ? m[1] : null; }"""
    )


def time_upload(page, image: bytes, name: str) -> dict[str, float]:
    previous = first_tile_mosaic(page)
    page.evaluate("() => performance.clearResourceTimings()")  # the buffer holds 250 entries by default
    t0 = time.perf_counter()
    page.set_input_files(
        "#image-upload input[type=file]", files=[{"name": name, "mimeType": "image/jpeg", "buffer": image}]
    )
    mosaic = page.wait_for_function(GRID_READY, arg=[previous], polling="raf", timeout=120_000).json_value()
    total = (time.perf_counter() - t0) * 1000.0
    upload_api = float(page.get_attribute("#upload-status [data-api-ms]", "data-api-ms"))
    acts_api = float(page.get_attribute("#grid-api-ms", "data-api-ms"))
    mosaic_ms = page.evaluate(
        "(u) => { const e = performance.getEntriesByName(new URL(u, location.href).href)[0];"
        " return e.responseEnd - e.startTime; }",
        mosaic,
    )
    return {"total": total, "upload_api": upload_api, "acts_api": acts_api, "mosaic": mosaic_ms}


def direct_api(api_url: str, image: bytes, layer: str, model: str = MODEL, combined: bool = False) -> float:
    """Baseline: the same three API requests straight from Python (``combined``: the two that Explore's
    camera makes instead, activations with the predictions, then the mosaic)."""
    with httpx.Client(base_url=api_url, timeout=120) as c:
        t0 = time.perf_counter()
        if not combined:
            c.post(f"/api/v1/models/{model}/predict", files={"image": ("x.jpg", image)}).raise_for_status()
        data = {"layer": layer, **({"top_k": "5"} if combined else {})}
        r = c.post(f"/api/v1/models/{model}/activations", files={"image": ("x.jpg", image)}, data=data)
        r.raise_for_status()
        c.get(r.json()["mosaic_url"]).raise_for_status()
        return (time.perf_counter() - t0) * 1000.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        with api_and_dashboard(tmp_path) as (api_url, dash_url), sync_playwright() as pw:
            browser = launch(pw)
            images = unique_photos(len(LAYERS) * (args.repeats + 1) * 2, seed=1)
            results: dict[str, list[dict[str, float]]] = {}
            baseline: dict[str, list[float]] = {}
            for layer in LAYERS:
                page = browser.new_context(viewport=VIEWPORT).new_page()
                console = ConsoleLog()
                console.attach(page)
                page.goto(f"{dash_url}/?model={MODEL}&layer={layer}")
                page.wait_for_selector("#model-weights-badge", timeout=60_000)
                print(f"{layer}: warm-up", flush=True)
                time_upload(page, images.pop(), "warmup.jpg")  # first-use costs (JIT, caches) not counted
                direct_api(api_url, images.pop(), layer)
                results[layer], baseline[layer] = [], []
                for i in range(args.repeats):  # interleaved: browser run, then direct run, on new images
                    results[layer].append(time_upload(page, images.pop(), f"photo{i}.jpg"))
                    baseline[layer].append(direct_api(api_url, images.pop(), layer))
                assert not console.errors, console.errors
                page.context.close()
            browser.close()

    print(f"Dashboard: upload -> grid visible, median of {args.repeats} new images per layer ({MODEL}, CPU)")
    header = f"{'layer':<10} {'total ms':>9} {'API ms':>8} {'API share':>9} {'mosaic ms':>9} {'direct API ms':>13} {'ratio':>6}"
    print(header)
    for layer in LAYERS:
        rs = results[layer]
        total = statistics.median(r["total"] for r in rs)
        api = statistics.median(r["upload_api"] + r["acts_api"] for r in rs)
        mosaic = statistics.median(r["mosaic"] for r in rs)
        direct = statistics.median(baseline[layer])
        share = statistics.median((r["upload_api"] + r["acts_api"] + r["mosaic"]) / r["total"] for r in rs)
        print(
            f"{layer:<10} {total:>9.0f} {api:>8.0f} {share:>9.0%} {mosaic:>9.0f} {direct:>13.0f} {total / direct:>6.2f}"
        )
    print("API share = (upload check + activations call + mosaic request) / total, per run, median.")
    print("ratio = dashboard total / the same API requests made directly (no dashboard, no browser).")


if __name__ == "__main__":
    main()
