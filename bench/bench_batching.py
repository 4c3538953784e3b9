"""Dynamic batching (issue 12), measured in one run against real `python -m server` processes.

Two API processes on the same machine, one with batching off (CONVLENS_BATCH_MAX=1) and one with it on
(the default, 16), both with CONVLENS_MODEL_CONCURRENCY=64 and CONVLENS_MAX_QUEUE=64 so that admission
control does not cap what the batcher sees, and both with the same CONVLENS_COMPILE (``--compile``: the
server's default ``auto`` unless told; then each warms up until its answers come from compiled code).
For 1, 8 and 64 concurrent clients, each client sends `predict` requests with an image of its own
(distinct: nothing comes from a cache; ``--inputs photos``, the default, sends the bundled photos as
224 px JPEGs with a little noise each, ``noise`` random 224x224 PNGs) for a fixed time; a separate
prober (a process of its own) hits /healthz every 20 ms. Per setting it prints requests/s, p50 and p99
latency, /healthz p99 and 503s; then the ratios: batched throughput at 8 clients against the serial rate (1 client, batching
off), and batched against unbatched at each concurrency. The servers run in turn, alternating which
goes first, ``--repeats`` rounds per level; medians and per-round ratios. Run:
    .venv/bin/python bench/bench_batching.py [--model efficientnet_lite0] [--seconds 8] [--inputs photos]
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.processes import api_process


def png(seed: int, size: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(
        buf, "PNG"
    )
    return buf.getvalue()


def photo_jpegs(n: int, size: int) -> list[bytes]:
    """``n`` distinct JPEGs (quality 90) of the bundled photos at ``size`` px, each with a little noise of its
    own: what a client of an image API sends (about 13 KiB each, where a noise PNG is 150 KiB)."""
    from server.datasets.builtin import _skimage_photos

    photos = [
        np.asarray(img.convert("RGB").resize((size, size)), dtype=np.int16)
        for _c, _p, img in _skimage_photos()
    ]
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        noisy = np.clip(photos[i % len(photos)] + rng.integers(-3, 4, photos[0].shape), 0, 255).astype(
            np.uint8
        )
        buf = io.BytesIO()
        Image.fromarray(noisy).save(buf, "JPEG", quality=90)
        out.append(buf.getvalue())
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


class Images:
    """Distinct images handed out once each per server (a repeated image would come from its caches)."""

    def __init__(self, images: list[bytes]) -> None:
        self.images = images
        self.next: dict[str, int] = {}
        self.lock = threading.Lock()

    def take(self, url: str) -> bytes:
        with self.lock:
            i = self.next.get(url, 0)
            if i >= len(self.images):
                raise RuntimeError("out of distinct images: raise the image count or lower --seconds")
            self.next[url] = i + 1
        return self.images[i]


SPAWN = multiprocessing.get_context("spawn")  # the prober starts clean, without the clients' threads


def probe(url: str, stop: float, out: multiprocessing.Queue) -> None:
    """GET /healthz every 20 ms until ``stop`` (time.monotonic, the clients' clock); the latencies go to ``out``."""
    health: list[float] = []
    with httpx.Client(timeout=30) as http:
        while time.monotonic() < stop:
            t0 = time.perf_counter()
            http.get(f"{url}/healthz")
            health.append(time.perf_counter() - t0)
            time.sleep(0.02)
    out.put(health)


def load(url: str, model: str, clients: int, seconds: float, images: Images) -> dict:
    latencies: list[float] = []
    compiled = 0
    busy = 0
    probes: multiprocessing.Queue = SPAWN.Queue()
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client(_c: int) -> None:
        nonlocal busy, compiled
        with httpx.Client(timeout=120) as http:
            while time.monotonic() < stop:
                img = images.take(url)
                t0 = time.perf_counter()
                r = http.post(f"{url}/api/v1/models/{model}/predict", files={"image": ("x", img)})
                dt = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        latencies.append(dt)
                        compiled += r.json()["compiled"]
                    elif r.status_code == 503:
                        busy += 1
                    else:
                        raise RuntimeError(f"{r.status_code}: {r.text[:200]}")

    # /healthz is timed from a process of its own: in this one it would wait on the clients' GIL
    prober = SPAWN.Process(target=probe, args=(url, stop, probes))
    prober.start()

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    health = probes.get(timeout=60)
    prober.join(10)
    return {
        "rps": len(latencies) / wall,
        "p50": pct(latencies, 50) * 1000,
        "p99": pct(latencies, 99) * 1000,
        "health_p99": pct(health, 99) * 1000,
        "busy": busy,
        "n": len(latencies),
        "compiled": compiled / max(1, len(latencies)),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--levels", default="1,8,64")
    ap.add_argument("--images", type=int, default=10000, help="distinct images (each server sees each once)")
    ap.add_argument(
        "--inputs",
        choices=("photos", "noise"),
        default="photos",
        help="photos: jittered bundled photos as JPEG; noise: random-pixel PNGs (150 KiB each, the costliest to "
        "send and decode)",
    )
    ap.add_argument("--repeats", type=int, default=3, help="rounds per level, the servers' order alternating")
    ap.add_argument(
        "--compile",
        choices=("auto", "off"),
        default="auto",
        help="CONVLENS_COMPILE of both servers; with auto the warm-up lasts until their answers come compiled",
    )
    ap.add_argument("--warmup", type=float, default=300, help="longest warm-up per server, in seconds")
    args = ap.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    print(f"cpus: {os.cpu_count()}, load average before: {os.getloadavg()}")
    made = (
        [png(i, args.size) for i in range(args.images)]
        if args.inputs == "noise"
        else photo_jpegs(args.images, args.size)
    )
    images = Images(made)  # every request is computed
    print(
        f"inputs: {args.images} distinct {args.inputs}, median {int(np.median([len(b) for b in made])) // 1024} KiB"
    )
    common = {
        "CONVLENS_MODEL_CONCURRENCY": "64",
        "CONVLENS_MAX_QUEUE": "64",
        "CONVLENS_DEFAULT_MODEL": args.model,
        "CONVLENS_COMPILE": args.compile,
    }
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        urls = {
            name: stack.enter_context(
                api_process(
                    Path(tmp) / name / "data", Path(tmp) / name / "logs", CONVLENS_BATCH_MAX=value, **common
                )
            )
            for name, value in (("off", "1"), ("on", "16"))
        }
        for name, url in urls.items():  # warm-up: model loaded, first forwards done, compiled where asked
            t0 = time.monotonic()
            while True:
                shares = [load(url, args.model, c, 3.0, images)["compiled"] for c in levels]
                if args.compile == "off" or min(shares) >= 0.9 or time.monotonic() - t0 > args.warmup:
                    break
                time.sleep(5)  # the background compiles get the CPUs
            print(
                f"  warm-up of batching {name}: {time.monotonic() - t0:.0f} s, compiled answers "
                f"{', '.join(f'{x:.0%}' for x in shares)} at {', '.join(str(c) for c in levels)} clients",
                flush=True,
            )
        runs: dict[tuple[str, int], list[dict]] = {}
        for clients in levels:
            for r in range(args.repeats):  # alternate which server goes first
                for name in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    res = load(urls[name], args.model, clients, args.seconds, images)
                    runs.setdefault((name, clients), []).append(res)
                    print(
                        f"  batching {name:3s} {clients:3d} clients, round {r + 1}: {res['rps']:6.1f} req/s  "
                        f"p50 {res['p50']:7.1f} ms  p99 {res['p99']:7.1f} ms  /healthz p99 {res['health_p99']:6.1f} ms  "
                        f"503s {res['busy']}  compiled {res['compiled']:.0%}  (n={res['n']}, load {os.getloadavg()[0]:.2f})",
                        flush=True,
                    )
    med = {
        k: {m: statistics.median(r[m] for r in v) for m in ("rps", "p50", "p99", "health_p99")}
        for k, v in runs.items()
    }
    serial = med[("off", 1)]["rps"]
    print("\n  medians over the rounds:")
    for clients in levels:
        on, off = med[("on", clients)], med[("off", clients)]
        spread = [
            b["rps"] / a["rps"] for a, b in zip(runs[("off", clients)], runs[("on", clients)], strict=True)
        ]
        for name, m in (("off", off), ("on", on)):
            print(
                f"  batching {name:3s} {clients:3d} clients: {m['rps']:6.1f} req/s  p50 {m['p50']:7.1f} ms  "
                f"p99 {m['p99']:7.1f} ms  /healthz p99 {m['health_p99']:6.1f} ms"
            )
        print(
            f"  {clients:3d} clients: batched / unbatched throughput {on['rps'] / off['rps']:.2f}x "
            f"(per round {', '.join(f'{x:.2f}' for x in spread)}); batched / serial (1 client, unbatched) "
            f"{on['rps'] / serial:.2f}x"
        )
    print(f"load average after: {os.getloadavg()}")
    if 8 in levels:
        print(
            f"issue 12 target: throughput at 8 clients >= 1.5x serial: {med[('on', 8)]['rps'] / serial:.2f}x"
        )


if __name__ == "__main__":
    main()
