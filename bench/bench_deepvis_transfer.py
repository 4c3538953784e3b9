"""Transfer rate of each DeepVis preset (issue 11): class images rendered on one model (Lite0), judged by
another (Lite1, the second opinion). A class image "transfers" when the other model has the target in its top 5,
which is the "robust feature" verdict. Prints one line per render, then the rate per preset.

Every preset renders every class with the same seed; classes are the outer loop, so that a run stopped
early has seen every preset alike. Run:
    .venv/bin/python bench/bench_deepvis_transfer.py [--steps 256] [--classes 1,130,...] [--presets ...]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.deepvis import class_probabilities
from server.engine.optvis import PRESETS, class_logit, preset_config, render
from server.engine.optvis.verdict import ROBUST, verdict
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager

# goldfish, flamingo, bee, hummingbird, golden retriever, tabby, zebra, balloon, banana, volcano
CLASSES = (1, 130, 309, 94, 207, 281, 340, 417, 954, 980)


def saturated_fraction(image: np.ndarray) -> float:
    stored = np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return float(np.mean((stored == 0) | (stored == 255)))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--judge", default="efficientnet_lite1")
    ap.add_argument("--steps", type=int, default=256)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--classes", default=",".join(map(str, CLASSES)))
    ap.add_argument("--presets", default=",".join(PRESETS))
    ap.add_argument("--knobs", default="{}", help="JSON knob overrides for every preset (tuning)")
    args = ap.parse_args()
    classes = [int(c) for c in args.classes.split(",")]
    presets = args.presets.split(",")
    knobs = json.loads(args.knobs)
    ensure_registered()
    zoo = ZooManager()
    lm, judge = zoo.load(args.model), zoo.load(args.judge)
    card = lm.card
    print(f"{args.model} rendered, {args.judge} judges; {args.steps} steps, seed {args.seed}, knobs {knobs}")
    print(f"cpus: {os.cpu_count()}, load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows: dict[str, list[dict]] = {p: [] for p in presets}
    for c in classes:
        for p in presets:
            cfg = preset_config(p, tuple(card.input_size[1:]), steps=args.steps, seed=args.seed, **knobs)
            t0 = time.perf_counter()
            r = render(
                lm.model, class_logit(c), cfg, input_size=card.input_size, mean=card.mean, std=card.std
            )
            wall = time.perf_counter() - t0
            own = float(class_probabilities(lm, r.image)[c])
            v = verdict(c, own, class_probabilities(judge, r.image))
            row = {
                "class": c,
                "label": card.labels[c],
                "own": own,
                "other": v.other_probability,
                "rank": v.other_rank,
                "robust": v.label == ROBUST,
                "sat": saturated_fraction(r.image),
            }
            rows[p].append(row)
            print(
                f"  {p:8s} {c:4d} {card.labels[c][:18]:18s} own p={own:.3f}  {args.judge} p={v.other_probability:.3f} "
                f"rank {v.other_rank:4d}  {v.label:14s} saturated {row['sat']:.1%}  {wall:.0f} s",
                flush=True,
            )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        "| preset | transfer (target in the judge's top 5) | judge's p of the target, median | own p, median | saturated, max |"
    )
    print("|---|---|---|---|---|")
    for p, rs in rows.items():
        n = sum(r["robust"] for r in rs)
        print(
            f"| {p} | **{n}/{len(rs)}** | {statistics.median(r['other'] for r in rs):.3f} | "
            f"{statistics.median(r['own'] for r in rs):.3f} | {max(r['sat'] for r in rs):.1%} |"
        )


if __name__ == "__main__":
    main()
