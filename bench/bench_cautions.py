"""Cost of the t-SNE cautions (issue 14), measured in one run on this machine.

On digits_cnn ``classifier.2`` features of the 1,797 digits (perplexity 30, 250 + 500 iterations, one
thread), interleaved ``--repeats`` times: one seed (kNN graph + P + optimisation, what a plain job
does), three seeds (the same plus two more optimisations sharing the graph and P, as the job does), and
the noise baseline (one more full run on Gaussian noise of the same N and dimension). Prints each
repeat, the median and spread, and the ratios against one seed; the load average first and last.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.config import Settings
from server.engine.projection import TSNERun
from server.engine.projection.cautions import noise_baseline, seed_runs
from server.services import Services

PARAMS = {"perplexity": 30.0, "early_exaggeration_iter": 250, "n_iter": 500, "frame_every": 50, "seed": 0}


def one_seed(x: np.ndarray) -> tuple[float, TSNERun]:
    t0 = time.perf_counter()
    run = TSNERun(x, dict(PARAMS))
    run.result = run.run(on_frame=lambda f: None)
    return time.perf_counter() - t0, run


def three_seeds(x: np.ndarray) -> float:
    t0 = time.perf_counter()
    run = TSNERun(x, dict(PARAMS))
    first = run.run(on_frame=lambda f: None)
    seed_runs(x, "tsne", dict(PARAMS), [0, 1, 2], first=first, graph=run.graph, affinities=run.affinities)
    return time.perf_counter() - t0


def with_baseline(x: np.ndarray, labels: np.ndarray, classes: list[str]) -> float:
    t0 = time.perf_counter()
    run = TSNERun(x, dict(PARAMS))
    first = run.run(on_frame=lambda f: None)
    noise_baseline(x, labels, classes, "tsne", dict(PARAMS), first.coords)
    return time.perf_counter() - t0


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):.2f} s (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        services = Services.from_settings(Settings(data_dir=Path(tmp)))
        loaded = services.zoo.load("digits_cnn")
        x = services.features.features(loaded, "classifier.2", "digits", "mean").features.astype(np.float64)
        labels, classes = services.datasets.labels("digits")
    times: dict[str, list[float]] = {"one seed": [], "three seeds": [], "one seed + noise baseline": []}
    for r in range(args.repeats):  # interleaved, so that load hits every variant alike
        times["one seed"].append(one_seed(x)[0])
        times["three seeds"].append(three_seeds(x))
        times["one seed + noise baseline"].append(with_baseline(x, labels, list(classes)))
        print(f"repeat {r + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()))
    base = statistics.median(times["one seed"])
    print(f"\nN = {len(x)}, D = {x.shape[1]}, t-SNE perplexity 30, 250 + 500 iterations, one thread")
    for k, v in times.items():
        ratios = [t / b for t, b in zip(v, times["one seed"], strict=True)]
        print(
            f"  {k:28s} {spread(v)}; ratio to one seed: median {statistics.median(v) / base:.2f}x "
            f"(per repeat {', '.join(f'{q:.2f}' for q in ratios)})"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
