"""Cost of one DeepVis step against a bare forward + backward at the same resolution, the wall time
of 256 steps on Lite0, and what the second opinion on a class image (issue 11: Lite0's and Lite1's softmax
of the final image, and the verdict) adds to a 256-step render, measured in one run.

The second opinion is timed between render steps too (every 4th step), so that load hits it and the steps
alike; its overhead is its median against 256 x the median step, and against the full run's wall time.

A DeepVis step = parametrisation -> random transforms -> forward -> backward -> Adam -> regularisers.
The bare baseline is a forward and a backward of the same objective to an input that requires grad.
Run: .venv/bin/python bench/bench_deepvis.py [--steps-timed N] [--full 256]
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

from bench.bench_attributions import report
from server.deepvis import DeepVisService, second_opinion_id
from server.engine.optvis import class_logit, preset_config, render
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument(
        "--steps-timed", type=int, default=12, help="steps per preset in the interleaved comparison"
    )
    ap.add_argument("--full", type=int, default=256, help="steps of the full run whose wall time is reported")
    ap.add_argument("--full-preset", default="deepvis", choices=("deepvis", "lucid"))
    ap.add_argument("--second-opinion", default="auto", help="model that judges the class image")
    args = ap.parse_args()
    print(f"cpus: {os.cpu_count()}, load average before: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ensure_registered()
    zoo = ZooManager()
    lm = zoo.load(args.model)
    card = lm.card
    other_id = second_opinion_id(zoo, args.second_opinion, lm)
    service = DeepVisService(zoo, None, args.second_opinion)  # type: ignore[arg-type]  # judge() stores nothing
    if other_id:
        zoo.load(other_id)  # loaded once, as in the server: the judge's cost is its forward, not its load
    judge_times: list[tuple[float, float]] = []
    target = class_logit(1)  # the full network: the heaviest objective
    x = lm.example_input()

    def bare() -> None:
        inp = x.detach().clone().requires_grad_(True)
        out = lm.model(inp)
        (-out[0, 1]).backward()

    step_times: dict[str, list[tuple[float, float]]] = {}

    def run(preset: str, steps: int) -> None:
        """Render, timing each step; a bare forward+backward runs (timed apart) between every two steps."""
        cfg = preset_config(preset, card.input_size[1:], steps=steps, seed=0)
        mark = [0.0, 0.0]

        def on_step(step: int, _value: float, _img: torch.Tensor) -> None:
            w, c = time.perf_counter(), time.process_time()
            if step > 0:  # the first interval includes the start evaluation
                step_times.setdefault(preset, []).append((w - mark[0], c - mark[1]))
            bare()
            if step > 0:  # paired with the step just before it: the same load on both
                bare_times = step_times.setdefault(f"bare, between {preset} steps", [])
                bare_times.append((time.perf_counter() - w, time.process_time() - c))
            if other_id and step % 4 == 3:  # the second opinion on the current image, between two steps
                jw, jc = time.perf_counter(), time.process_time()
                service.judge(lm, _img[0].permute(1, 2, 0).cpu().numpy(), 1, other_id)
                judge_times.append((time.perf_counter() - jw, time.process_time() - jc))
            mark[0], mark[1] = time.perf_counter(), time.process_time()

        render(
            lm.model,
            target,
            cfg,
            input_size=card.input_size,
            mean=card.mean,
            std=card.std,
            device=lm.device,
            on_step=on_step,
        )

    run("deepvis", 3)
    run("lucid", 3)  # warm-up
    step_times.clear()
    judge_times.clear()
    for preset in ("deepvis", "lucid"):
        run(preset, args.steps_timed + 1)

    print(
        f"{args.model} {card.input_size} on {lm.device}, {torch.get_num_threads()} threads; class-logit objective"
    )
    for preset in ("deepvis", "lucid"):
        base = f"bare, between {preset} steps"
        report({base: step_times[base], preset: step_times[preset]}, base)
        paired = [
            s[i] / b[i] for s, b in zip(step_times[preset], step_times[base], strict=True) for i in (0, 1)
        ]
        wall, cpu = paired[0::2], paired[1::2]
        print(
            f"  {preset}: median of per-step ratios to the adjacent bare run: "
            f"wall {statistics.median(wall):.2f}x, CPU {statistics.median(cpu):.2f}x"
        )
    step_wall = statistics.median(w for p in ("deepvis", "lucid") for w, _ in step_times[p])
    if judge_times:
        jw = [w for w, _ in judge_times]
        print(
            f"  second opinion ({args.model} + {other_id} softmax, verdict), {len(jw)} runs between steps: "
            f"median {statistics.median(jw) * 1000:.1f} ms (min {min(jw) * 1000:.1f}, max {max(jw) * 1000:.1f}); "
            f"vs 256 x median step ({256 * step_wall:.2f} s): {statistics.median(jw) / (256 * step_wall):.1%} "
            f"(spread {min(jw) / (256 * step_wall):.1%}-{max(jw) / (256 * step_wall):.1%})"
        )
    if args.full:
        cfg = preset_config(args.full_preset, card.input_size[1:], steps=args.full, seed=0)
        w, c = time.perf_counter(), time.process_time()
        r = render(
            lm.model, target, cfg, input_size=card.input_size, mean=card.mean, std=card.std, device=lm.device
        )
        print(
            f"  {args.full} {args.full_preset} steps: {time.perf_counter() - w:.1f} s wall, {time.process_time() - c:.1f} s CPU; "
            f"objective {r.start_value:.2f} -> {r.final_value:.2f}"
        )
        if other_id:
            jw = []
            for _ in range(3):
                t0 = time.perf_counter()
                service.judge(lm, r.image, 1, other_id)
                jw.append(time.perf_counter() - t0)
            full_wall = time.perf_counter() - w - sum(jw)
            print(
                f"  second opinion on that render's image, 3 runs: median {statistics.median(jw) * 1000:.1f} ms "
                f"= {statistics.median(jw) / full_wall:.1%} of the {args.full}-step render"
            )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
