"""Compiled inference (issue 19), measured in one run on efficientnet_lite0 at 224 px (channels_last).

1. The FLOP count of one Lite0 forward (torch.utils.flop_counter: a multiply-add is 2 FLOPs), this
   machine's FP32 peak (from its flags and clock, or --peak-gflops; a large fp32 matmul as a practical ceiling).
2. Throughput at batch 1 and 8: eager fp32, compiled fp32 (ConvLens' own path: the background
   Compiler's graph, padded batches and all) and the fast precision (bf16 autocast), interleaved per
   repeat; images/s median and spread, the share of peak, and the ratios per repeat.
3. With dynamic batching: 8 client threads calling ExploreService.predict on distinct photos, batching
   on and compiled, against the same service serving them serially, eager (in-process: no HTTP).
Run:
    .venv/bin/python bench/bench_compile.py [--repeats 3] [--seconds 3] [--peak-gflops G]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.artifacts import ArtifactStore
from server.config import Settings
from server.datasets.builtin import _skimage_photos
from server.engine.compiled import Compiler
from server.engine.inference import precision_mode
from server.explore import ExploreService
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager


def rate(fn, x: torch.Tensor, seconds: float, precision: str = "exact") -> float:
    n, stop = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    with torch.inference_mode(), precision_mode(precision, x.device):
        while time.perf_counter() < stop:
            fn(x)
            n += x.shape[0]
        _sync(x.device)
    return n / (time.perf_counter() - t0)


def flops_per_image(model: torch.nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.inference_mode():
        model(x[:1])
    return int(counter.get_total_flops())


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_gflops(device: torch.device, seconds: float = 2.0, n: int = 2048) -> float:
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    k, stop = 0, time.perf_counter() + seconds
    t0 = time.perf_counter()
    while time.perf_counter() < stop:
        a @ b
        k += 1
    _sync(device)
    return 2 * n**3 * k / (time.perf_counter() - t0) / 1e9


def nominal_peak_gflops() -> float:
    """FP32 peak from the CPU's flags and reported clock: cores x FLOP/cycle x GHz."""
    info = Path("/proc/cpuinfo").read_text()
    mhz = float(next(line.split(":")[1] for line in info.splitlines() if line.startswith("cpu MHz")))
    # FMA pipes x fp32 lanes x 2 FLOP. AMD's Zen 3 and Zen 4 (family 25) have two 256-bit FMA pipes; Zen 4
    # runs AVX-512 on them in two halves, so its flag does not double the peak. Intel's AVX-512 parts have
    # two 512-bit pipes.
    amd_family = next(
        (line.split(":")[1].strip() for line in info.splitlines() if line.startswith("cpu family")), ""
    )
    zen = "AuthenticAMD" in info and amd_family in ("23", "25")
    per_cycle = 64 if " avx512f" in info and not zen else 32
    return (os.cpu_count() or 1) * per_cycle * mhz / 1000


def spread(xs: list[float]) -> str:
    return f"median {statistics.median(xs):.1f} (spread {min(xs):.1f}-{max(xs):.1f})"


def clients(svc: ExploreService, lm, imgs: list[tuple[Image.Image, str]], threads: int) -> float:
    """Images/s of ``threads`` clients each asking for its share of ``imgs`` (distinct: no answer cache)."""
    chunks = [imgs[i::threads] for i in range(threads)]
    start = threading.Barrier(threads + 1)

    def run(chunk):
        start.wait()
        for img, sha in chunk:
            svc.predict(lm, img, sha)

    ts = [threading.Thread(target=run, args=(c,)) for c in chunks]
    for t in ts:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in ts:
        t.join()
    return len(imgs) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument(
        "--peak-gflops",
        type=float,
        default=0.0,
        help="this CPU's FP32 peak; default: cores x FLOP/cycle (32 with AVX2 FMA, 64 with AVX-512) x the clock "
        "/proc/cpuinfo reports",
    )
    ap.add_argument("--requests", type=int, default=96, help="predict requests per client round")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto (the same paths on a GPU machine)")
    args = ap.parse_args()
    ensure_registered()
    lite0 = ZooManager(args.device).load("efficientnet_lite0")
    print(f"device {lite0.device}")
    print(
        f"cpus {os.cpu_count()}, torch threads {torch.get_num_threads()}, load average before {os.getloadavg()}"
    )
    photos = [img for _c, _png, img in _skimage_photos()]
    xs = torch.cat([lite0.preprocess(img)[0] for img in photos])
    flops = flops_per_image(lite0.model, xs)
    if not args.peak_gflops:
        args.peak_gflops = nominal_peak_gflops()
    print(
        f"\n1. Lite0 forward at 224 px: {flops / 1e9:.3f} GFLOP per image (FlopCounterMode, multiply-add = 2)"
    )
    ceiling = matmul_gflops(lite0.device)
    print(
        f"   FP32 peak used: {args.peak_gflops:.1f} GFLOP/s; a 2048^3 fp32 matmul reaches {ceiling:.0f} GFLOP/s"
    )

    compiler = Compiler("auto", Path(tempfile.mkdtemp(prefix="convlens-bench-compile-")))
    compiler.prepare().wait()
    batches = {
        b: xs[:b] if b <= len(xs) else xs.repeat((b + len(xs) - 1) // len(xs), 1, 1, 1)[:b]
        for b in (1, 2, 4, 8)
    }
    t0 = time.perf_counter()
    for x in batches.values():
        compiler.forward(lite0.model, None, lite0.to_input(x))
    compiler.wait_idle()
    print(
        f"   compiling batches 1, 2, 4, 8 took {time.perf_counter() - t0:.0f} s ({compiler.stats.compiled} graphs)"
    )

    print("\n2. images/s (interleaved per repeat)")
    for b in (1, 8):
        x = lite0.to_input(batches[b])
        fn = compiler.forward(lite0.model, None, x)
        assert fn is not None, compiler.status(lite0.model)
        res: dict[str, list[float]] = {"eager": [], "compiled": [], "fast": []}
        for _ in range(args.repeats):
            res["eager"].append(rate(lite0.model, x, args.seconds))
            res["compiled"].append(rate(fn, x, args.seconds))
            res["fast"].append(rate(lite0.model, x, args.seconds, "fast"))
        for k, v in res.items():
            gflops = statistics.median(v) * flops / 1e9
            print(
                f"   batch {b} {k:9s} {spread(v)} img/s = {gflops:.1f} GFLOP/s = {gflops / args.peak_gflops:.1%} "
                f"of FP32 peak, {gflops / ceiling:.1%} of the matmul's rate"
            )
        for k in ("compiled", "fast"):
            ratios = [a / e for a, e in zip(res[k], res["eager"], strict=True)]
            print(f"   batch {b} {k}/eager per repeat: {', '.join(f'{r:.2f}x' for r in ratios)}")

    print(
        f"\n3. {args.requests} predicts of distinct photos: 8 clients, batching + compiled, vs serial eager"
    )
    settings = Settings(
        data_dir=Path(tempfile.mkdtemp(prefix="convlens-bench-")), preload_default_model=False
    )
    artifacts = ArtifactStore(settings.data_dir / "artifacts")
    serial = ExploreService(settings.model_copy(update={"batch_max": 1}), artifacts)
    batched = ExploreService(settings, artifacts, compiler)
    rng = np.random.default_rng(0)
    ratios, r_serial, r_batched = [], [], []
    for rep in range(args.repeats):  # every image distinct (a jittered photo), so no answer is cached
        imgs = []
        for i in range(args.requests):
            base = np.asarray(photos[i % len(photos)].resize((224, 224)), dtype=np.int16)
            noisy = np.clip(base + rng.integers(-3, 4, base.shape), 0, 255).astype(np.uint8)
            imgs.append((Image.fromarray(noisy), f"{rep:08x}{i:056x}"))
        s = clients(serial, lite0, [(im, "s" + sha) for im, sha in imgs], 1)
        c = clients(batched, lite0, [(im, "b" + sha) for im, sha in imgs], 8)
        r_serial.append(s)
        r_batched.append(c)
        ratios.append(c / s)
    st = batched.batcher.stats
    print(f"   serial eager {spread(r_serial)} img/s; 8 clients batched+compiled {spread(r_batched)} img/s")
    print(
        f"   ratio per repeat: {', '.join(f'{r:.2f}x' for r in ratios)}; median {statistics.median(ratios):.2f}x"
    )
    print(
        f"   batches: {st.forwards} forwards carried {st.inputs} inputs (largest {st.largest});"
        f" compiled forwards served {compiler.stats.served}"
    )
    print(f"load average after {os.getloadavg()}")
    compiler.close()


if __name__ == "__main__":
    main()
