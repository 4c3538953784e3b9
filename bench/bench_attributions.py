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

from server.engine.relu_backprop import Target, backprop_map
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
    base_wall = statistics.median(t[0] for t in times["bare forward+backward"])
    base_cpu = statistics.median(t[1] for t in times["bare forward+backward"])
    print(
        f"{args.model} on {lm.device}, {torch.get_num_threads()} threads, median of {args.repeats} interleaved runs"
    )
    print(f"  {'':28s} {'wall ms':>9s} {'ratio':>6s} {'cpu ms':>9s} {'ratio':>6s}")
    for name, ts in times.items():
        wall = statistics.median(t[0] for t in ts)
        cpu = statistics.median(t[1] for t in ts)
        print(
            f"  {name:28s} {wall * 1000:9.1f} {wall / base_wall:5.2f}x {cpu * 1000:9.1f} {cpu / base_cpu:5.2f}x"
        )


if __name__ == "__main__":
    main()
