"""The opt-in fast precision (issue 19): bf16 autocast against exact fp32, measured in one run.

1. Throughput of efficientnet_lite0 at 224 px (channels_last, inference mode) at batch 1 and 8, exact
   and fast interleaved per repeat: images/s, median and spread, the ratio per repeat.
2. The accuracy cost: top-1 agreement of fast with exact on the bundled photos (Lite0) and on 1,000
   digits (digits_cnn), and the largest relative error of Lite0's activations at a few layers
   (max |fast - exact| / max |exact| over the photos).
Run:
    .venv/bin/python bench/bench_precision.py [--repeats 5] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.datasets.builtin import _skimage_photos
from server.engine.hooks import capture
from server.engine.inference import precision_label, precision_mode
from server.zoo.builtin import ensure_registered
from server.zoo.digits import digits_split
from server.zoo.manager import ZooManager

LAYERS = ("blocks.1", "blocks.3", "blocks.5", "conv_head")


def images_per_second(model: torch.nn.Module, x: torch.Tensor, precision: str, seconds: float) -> float:
    n, stop = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    with torch.inference_mode(), precision_mode(precision, x.device):
        while time.perf_counter() < stop:
            model(x)
            n += x.shape[0]
    return n / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0)
    args = ap.parse_args()
    ensure_registered()
    zoo = ZooManager("cpu")
    lite0 = zoo.load("efficientnet_lite0")
    print(
        f"cpus: {os.cpu_count()}, torch threads: {torch.get_num_threads()}, load average before: {os.getloadavg()}"
    )
    print(f"fast = {precision_label('fast', lite0.device)}")
    photos = [img for _c, _png, img in _skimage_photos()]
    xs = torch.cat([lite0.preprocess(img)[0] for img in photos])
    print("\n1. efficientnet_lite0, 224 px, images/s")
    for batch in (1, 8):
        x = xs[:batch].contiguous(memory_format=torch.channels_last) if batch > 1 else xs[:1]
        for p in ("exact", "fast"):  # warm-up (oneDNN picks its kernels on the first calls)
            images_per_second(lite0.model, x, p, 1.0)
        exact, fast = [], []
        for _ in range(args.repeats):
            exact.append(images_per_second(lite0.model, x, "exact", args.seconds))
            fast.append(images_per_second(lite0.model, x, "fast", args.seconds))
        ratios = [f / e for e, f in zip(exact, fast, strict=True)]
        print(
            f"   batch {batch}: exact {statistics.median(exact):6.1f} img/s ({min(exact):.1f}-{max(exact):.1f}), "
            f"fast {statistics.median(fast):6.1f} img/s ({min(fast):.1f}-{max(fast):.1f}); fast / exact median "
            f"{statistics.median(ratios):.2f}x (per repeat {', '.join(f'{r:.2f}' for r in ratios)})"
        )
    print("\n2. accuracy cost")
    with torch.inference_mode():
        exact_logits = lite0.model(xs)
        with precision_mode("fast", lite0.device):
            fast_logits = lite0.model(xs).float()
        agree = int((exact_logits.argmax(1) == fast_logits.argmax(1)).sum())
        print(f"   Lite0, {len(xs)} bundled photos: top-1 agreement {agree}/{len(xs)}")
        digits = zoo.load("digits_cnn")
        d = digits.to_input(torch.from_numpy(digits_split().x_train[:1000]))
        exact_d = digits.model(d).argmax(1)
        with precision_mode("fast", digits.device):
            fast_d = digits.model(d).float().argmax(1)
        print(f"   digits_cnn, 1,000 digits: top-1 agreement {int((exact_d == fast_d).sum())}/1000")
        with capture(lite0.model, list(LAYERS)) as exact_acts:
            lite0.model(xs)
        exact_acts = {k: v.float().clone() for k, v in exact_acts.items()}
        with capture(lite0.model, list(LAYERS)) as fast_acts, precision_mode("fast", lite0.device):
            lite0.model(xs)
        for layer in LAYERS:
            e, f = exact_acts[layer], fast_acts[layer].float()
            rel = float((f - e).abs().max() / e.abs().max())
            mean_rel = float((f - e).abs().mean() / e.abs().mean())
            print(
                f"   Lite0 {layer:10s}: max |fast - exact| / max |exact| = {rel:.4f}; mean abs error / mean |exact| = {mean_rel:.4f}"
            )
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
