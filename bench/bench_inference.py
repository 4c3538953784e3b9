"""Foundation benchmarks (issue 2), all measured in one run on this machine:

1. activation extraction vs a plain forward (same model, same batch): throughput ratio, target >= 0.9;
2. inference throughput at batch 1 and 8: ConvLens' path (channels_last, inference_mode) vs naive NCHW fp32;
3. median latency of an HTTP activations request (Lite0, 224 px, mosaic included) against a real uvicorn
   process vs a bare forward: target <= 3x.
"""

from __future__ import annotations

import copy
import io
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import interleaved_medians
from server.engine.hooks import capture
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager
from tests.processes import api_process

LAYER = "blocks.3"


def main() -> None:
    torch.manual_seed(0)
    ensure_registered()
    lm = ZooManager("auto").load("efficientnet_lite0")
    model = lm.model
    print(f"device: {lm.device}, torch threads: {torch.get_num_threads()}")

    # 1. hooks + copies vs plain forward (same fast path, batch 8)
    x8 = lm.example_input(batch=8)

    def plain():
        with torch.inference_mode():
            model(x8)

    def extract():
        with capture(model, [LAYER]) as acts, torch.inference_mode():
            model(x8)
        return acts[LAYER].cpu().numpy()

    t = interleaved_medians({"plain": plain, "extract": extract}, repeats=10)
    r1 = t["plain"] / t["extract"]
    print(
        f"[1] activation extraction ({LAYER}, batch 8): plain {8 / t['plain']:.1f} img/s, "
        f"extract {8 / t['extract']:.1f} img/s -> throughput ratio {r1:.3f} (target >= 0.9)"
    )

    # 2. ConvLens' inference path vs naive NCHW float32 (same weights)
    naive = copy.deepcopy(model).to(memory_format=torch.contiguous_format).eval()
    for batch in (1, 8):
        xb = torch.randn(batch, 3, 224, 224, generator=torch.Generator().manual_seed(batch))
        xb_fast = lm.to_input(xb)

        def ours(xb_fast=xb_fast):
            with torch.inference_mode():
                model(xb_fast)

        def base(xb=xb):
            with torch.no_grad():
                naive(xb.contiguous())

        t = interleaved_medians({"ours": ours, "naive": base}, repeats=12 if batch == 1 else 6)
        print(
            f"[2] batch {batch}: ours {batch / t['ours']:.1f} img/s, naive NCHW fp32 {batch / t['naive']:.1f} img/s "
            f"-> speed-up {t['naive'] / t['ours']:.2f}x"
        )

    # 3. HTTP activations latency vs bare forward
    x1 = lm.example_input(batch=1)

    def bare():
        with torch.inference_mode():
            model(x1)

    rng = np.random.default_rng(0)
    base_img = rng.integers(0, 255, (256, 256, 3), dtype=np.uint8)
    bare_t = interleaved_medians({"bare": bare}, repeats=20)["bare"]
    with tempfile.TemporaryDirectory() as tmp, api_process(Path(tmp) / "data", Path(tmp) / "logs") as url:
        client = httpx.Client(base_url=url, timeout=60)
        # an early layer (the forward stops there) and the last conv layer (full forward, 1,280-tile mosaic)
        for layer in (LAYER, "conv_head"):
            lat = []
            for i in range(23):
                img = base_img.copy()
                img[0, 0, 0] = i  # a new image each time: no cache hits
                img[0, 0, 1] = len(layer)
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, "PNG")
                t0 = time.perf_counter()
                r = client.post(
                    "/api/v1/models/efficientnet_lite0/activations",
                    files={"image": ("x.png", buf.getvalue())},
                    data={"layer": layer},
                )
                dt = time.perf_counter() - t0
                r.raise_for_status()
                if i >= 3:
                    lat.append(dt)
            http_median = statistics.median(lat)
            print(
                f"[3] HTTP activations ({layer}, mosaic included) median {http_median * 1000:.1f} ms vs bare "
                f"forward {bare_t * 1000:.1f} ms -> ratio {http_median / bare_t:.2f}x (target <= 3x)"
            )


if __name__ == "__main__":
    main()
