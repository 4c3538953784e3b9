"""Cost of a deconvnet / guided-backprop map against a bare forward + backward, measured in one run.

Both sides send a class score (full network) or a filter (forward stopped at the layer) back to the
input; the bare side runs the model as it is, ours with every rectifier rewritten.
Run: .venv/bin/python bench/bench_attributions.py [--repeats N]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from server.engine.attribution import Target, backprop_map
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager


def bare_forward_backward(model: torch.nn.Module, x: torch.Tensor, class_index: int) -> None:
    inp = x.detach().clone().requires_grad_(True)
    logits = model(inp)
    (grad,) = torch.autograd.grad(logits[0, class_index], inp)
    grad[0].cpu().numpy()


def timed(fn) -> tuple[float, float]:
    """(wall, process CPU) seconds: CPU time is the steadier measure on a shared machine."""
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--model", default="efficientnet_lite0")
    args = ap.parse_args()
    ensure_registered()
    lm = ZooManager().load(args.model)
    x = lm.example_input()
    with torch.no_grad():
        cls = int(lm.model(x).argmax())
    cases = {
        "bare forward+backward": lambda: bare_forward_backward(lm.model, x, cls),
        "deconvnet (class)": lambda: backprop_map(lm.model, x, Target(class_index=cls), "deconvnet"),
        "guided_backprop (class)": lambda: backprop_map(
            lm.model, x, Target(class_index=cls), "guided_backprop"
        ),
        "gradient (class)": lambda: backprop_map(lm.model, x, Target(class_index=cls), "gradient"),
        "deconvnet (filter blocks.3)": lambda: backprop_map(lm.model, x, Target("blocks.3", 7), "deconvnet"),
    }
    for fn in cases.values():  # warm up (oneDNN primitive creation)
        fn()
        fn()
    times: dict[str, list[tuple[float, float]]] = {k: [] for k in cases}
    for _ in range(args.repeats):  # interleaved, so that machine load hits every case alike
        for name, fn in cases.items():
            times[name].append(timed(fn))
    report(times, "bare forward+backward")
    print(
        f"({args.model} on {lm.device}, {torch.get_num_threads()} threads, {args.repeats} interleaved runs)"
    )


def report(times: dict[str, list[tuple[float, float]]], baseline: str) -> None:
    """Median and minimum of wall and CPU time, each as a ratio to the baseline's.

    On a shared machine the minimum (the run least disturbed by other processes) is the steadier
    estimate of the cost itself; the median shows what a user sees under the current load.
    """
    stats = {
        name: [f(t[i] for t in ts) for i in (0, 1) for f in (statistics.median, min)]
        for name, ts in times.items()
    }
    base = stats[baseline]
    print(
        f"  {'':28s} {'wall med':>9s} {'ratio':>6s} {'wall min':>9s} {'ratio':>6s} {'cpu med':>9s} {'ratio':>6s} {'cpu min':>9s} {'ratio':>6s}"
    )
    for name, vals in stats.items():
        cells = "".join(f" {v * 1000:9.1f} {v / b:5.2f}x" for v, b in zip(vals, base, strict=True))
        print(f"  {name:28s}{cells}")


if __name__ == "__main__":
    main()
