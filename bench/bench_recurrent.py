"""Recurrent models (issue 15): a /sequence trace against a bare forward, and gradient-flow for three models.

Prints the load average first, then for each item the median and spread (min..max) of interleaved runs
measured in this one run. The /sequence cost is measured twice: the service call (trace + .npy
artifacts + JSON summary; PNGs are rendered on their first GET) and the whole HTTP request through the
ASGI app, each against a bare forward of the same digit (``model(x)``, one fused nn.LSTM call).
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi.testclient import TestClient

from server.api.app import create_app
from server.config import Settings
from server.engine import recurrent as rec

ROUNDS = 5
REPEATS = 30


def spread(v: list[float]) -> str:
    return f"median {statistics.median(v):.3f} (min {min(v):.3f}, max {max(v):.3f}, n={len(v)})"


def main() -> None:
    print("load average:", " ".join(f"{x:.2f}" for x in os.getloadavg()), f"({os.cpu_count()} cores)")
    root = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), models_dir=root / "models", preload_default_model=False)
        with TestClient(create_app(settings)) as client:
            svc = client.app.state.services.recurrent
            lm = svc.load("seq_lstm")
            x, label, _ = svc.dataset_item(lm, "digits", 7)
            counter = itertools.count()

            def bare() -> None:
                with torch.inference_mode():
                    lm.model(x)

            def trace() -> None:
                with lm.lock:
                    rec.trace_sequence(lm.model.rnn, lm.model.readout, lm.model.to_sequence(x))

            def service() -> None:
                svc.sequence(lm, x, label, f"bench:{next(counter)}")  # a new key: artifacts written each time

            def http() -> None:
                r = client.post("/api/v1/models/seq_lstm/sequence", json={"dataset": "digits", "index": 7})
                assert r.status_code == 200

            fns = {"bare": bare, "trace": trace, "service": service, "http": http}
            for fn in fns.values():
                fn()
            svc_ratio, http_ratio, bare_ms, trace_ratio = [], [], [], []
            for _ in range(ROUNDS):  # interleaved rounds; each a median of REPEATS calls
                med = {}
                for k, fn in fns.items():
                    t = []
                    for _ in range(REPEATS):
                        t0 = time.perf_counter()
                        fn()
                        t.append(time.perf_counter() - t0)
                    med[k] = statistics.median(t)
                trace_ratio.append(med["trace"] / med["bare"])
                svc_ratio.append(med["service"] / med["bare"])
                http_ratio.append(med["http"] / med["bare"])
                bare_ms.append(med["bare"] * 1e3)
            print("bare forward of one digit on seq_lstm, ms:", spread(bare_ms))
            print(
                "engine trace (hidden, gates, cell, per-step prediction) / bare forward:", spread(trace_ratio)
            )
            print("/sequence service call / bare forward:", spread(svc_ratio))
            print("/sequence HTTP request / bare forward:", spread(http_ratio))

            ids = ["seq_rnn", "seq_lstm", "seq_gru"]
            svc.gradient_flow(ids, "digits", 256)  # warm: models loaded, digits preprocessed once
            secs = []
            for _ in range(ROUNDS):
                t0 = time.perf_counter()
                r = client.get(
                    "/api/v1/recurrent/gradient-flow", params={"models": ",".join(ids), "limit": 256}
                )
                assert r.status_code == 200
                secs.append(time.perf_counter() - t0)
            print("gradient-flow, 3 models x 256 digits (HTTP), s:", spread(secs))


if __name__ == "__main__":
    main()
