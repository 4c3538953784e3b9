"""Wall time of `convlens microscope` (issue 17: 2 layers x 64 filters under 2 minutes on a 2-core CPU with
warm caches), cold (a fresh data directory: features, audit and DeepVis renders computed) and warm (the same
export again: the caches read back), and, in the same run, what batching DeepVis buys: a few filters
rendered one by one (DeepVisService.render, as the neuron page's jobs do) against the same number rendered in
one optimisation batch, both at the export's step count.

Run: .venv/bin/python bench/bench_microscope.py [--model digits_cnn] [--layers features.5,features.6]
     [--dataset digits] [--filters 64] [--steps 48] [--compare 8]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.config import REPO_ROOT, Settings
from server.microscope import MicroscopeRequest
from server.services import Services


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="digits_cnn")
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--layers", default="features.5,features.6")
    ap.add_argument("--filters", type=int, default=64)
    ap.add_argument("--steps", type=int, default=48)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--compare", type=int, default=8, help="filters rendered one by one vs batched")
    args = ap.parse_args()
    layers = tuple(x for x in args.layers.split(",") if x)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")

    with tempfile.TemporaryDirectory(prefix="bench-microscope-") as tmp:
        root = Path(tmp)
        settings = Settings(
            data_dir=root / "data", models_dir=REPO_ROOT / "models", preload_default_model=False
        )
        services = Services.from_settings(settings)
        req = MicroscopeRequest(
            args.model, args.dataset, layers, filters=args.filters, steps=args.steps, batch=args.batch
        )
        services.zoo.load(args.model)  # the model's load is not the export's
        services.datasets.get(args.dataset)  # a built-in dataset is written on first use
        times = {}
        for run in ("cold", "warm"):
            t0 = time.perf_counter()
            last = [t0]

            def phase(_f: float, message: str, t0: float = t0, last: list[float] = last) -> None:
                now = time.perf_counter()
                print(f"  {now - t0:7.1f} s (+{now - last[0]:5.1f}) {message}", flush=True)
                last[0] = now

            site = services.microscope.export(req, root / "site", phase)
            times[run] = time.perf_counter() - t0
            print(
                f"{run}: {times[run]:6.1f} s  ({len(layers)} layers x {args.filters} filters, "
                f"{site.pages} pages, {site.images} images, {args.steps} DeepVis steps per preset)"
            )

        lm = services.zoo.load(args.model)
        layer, n = layers[0], args.compare
        knobs = {"steps": args.steps, "seed": 0}
        t0 = time.perf_counter()
        for c in range(n):
            services.deepvis.render(
                {
                    "model": args.model,
                    "target": {"layer": layer, "channel": c},
                    "preset": "deepvis",
                    "knobs": knobs,
                }
            )
        one_by_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        services.deepvis.render_filters(
            lm, layer, list(range(n)), "deepvis", {**knobs, "seed": 1}
        )  # uncached
        batched = time.perf_counter() - t0
        print(
            f"DeepVis of {n} filters of {layer}, {args.steps} steps: one by one {one_by_one:.2f} s, "
            f"one batch {batched:.2f} s ({one_by_one / batched:.1f}x)"
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    verdict = "meets" if times["warm"] < 120 else "misses"
    print(f"warm export {times['warm']:.1f} s {verdict} the 2-minute target; cold {times['cold']:.1f} s")


if __name__ == "__main__":
    main()
