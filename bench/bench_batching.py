"""Dynamic batching (issue 12), measured in one run against real `python -m server` processes.

Two API processes on the same machine, one with batching off (CONVLENS_BATCH_MAX=1) and one with it on
(the default, 16), both with CONVLENS_MODEL_CONCURRENCY=64 and CONVLENS_MAX_QUEUE=64 so that admission
control does not cap what the batcher sees. For 1, 8 and 64 concurrent clients, each client sends
`predict` requests with an image of its own (distinct random 224x224 PNGs: nothing comes from a cache)
for a fixed time; a separate prober hits /healthz every 20 ms. Per setting it prints requests/s, p50
and p99 latency, /healthz p99 and 503s; then the ratios: batched throughput at 8 clients against the
serial rate (1 client, batching off), and batched against unbatched at each concurrency. The servers run
in turn, alternating which goes first, ``--repeats`` rounds per level; medians and per-round ratios. Run:
    .venv/bin/python bench/bench_batching.py [--model efficientnet_lite0] [--seconds 8]
"""

from __future__ import annotations

import argparse
import io
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


def load(url: str, model: str, clients: int, seconds: float, images: Images) -> dict:
    latencies: list[float] = []
    busy = 0
    health: list[float] = []
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client(_c: int) -> None:
        nonlocal busy
        with httpx.Client(timeout=120) as http:
            while time.monotonic() < stop:
                img = images.take(url)
                t0 = time.perf_counter()
                r = http.post(f"{url}/api/v1/models/{model}/predict", files={"image": ("x.png", img)})
                dt = time.perf_counter() - t0
                with lock:
                    if r.status_code == 200:
                        latencies.append(dt)
                    elif r.status_code == 503:
                        busy += 1
                    else:
                        raise RuntimeError(f"{r.status_code}: {r.text[:200]}")

    def prober() -> None:
        with httpx.Client(timeout=30) as http:
            while time.monotonic() < stop:
                t0 = time.perf_counter()
                http.get(f"{url}/healthz")
                health.append(time.perf_counter() - t0)
                time.sleep(0.02)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    threads.append(threading.Thread(target=prober))
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "rps": len(latencies) / wall,
        "p50": pct(latencies, 50) * 1000,
        "p99": pct(latencies, 99) * 1000,
        "health_p99": pct(health, 99) * 1000,
        "busy": busy,
        "n": len(latencies),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--levels", default="1,8,64")
    ap.add_argument("--images", type=int, default=6000, help="distinct images (each server sees each once)")
    ap.add_argument("--repeats", type=int, default=3, help="rounds per level, the servers' order alternating")
    args = ap.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    print(f"cpus: {os.cpu_count()}, load average before: {os.getloadavg()}")
    images = Images([png(i, args.size) for i in range(args.images)])  # every request is computed
    common = {
        "CONVLENS_MODEL_CONCURRENCY": "64",
        "CONVLENS_MAX_QUEUE": "64",
        "CONVLENS_DEFAULT_MODEL": args.model,
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
        for url in urls.values():  # warm-up: model loaded, first forwards done
            load(url, args.model, 2, 2.0, images)
        runs: dict[tuple[str, int], list[dict]] = {}
        for clients in levels:
            for r in range(args.repeats):  # alternate which server goes first
                for name in ("off", "on") if r % 2 == 0 else ("on", "off"):
                    res = load(urls[name], args.model, clients, args.seconds, images)
                    runs.setdefault((name, clients), []).append(res)
                    print(
                        f"  batching {name:3s} {clients:3d} clients, round {r + 1}: {res['rps']:6.1f} req/s  "
                        f"p50 {res['p50']:7.1f} ms  p99 {res['p99']:7.1f} ms  /healthz p99 {res['health_p99']:6.1f} ms  "
                        f"503s {res['busy']}  (n={res['n']}, load {os.getloadavg()[0]:.2f})",
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
