"""A full neuron audit vs feature extraction alone, on the same preprocessed images, in one process.

    .venv/bin/python bench/bench_audit.py [--model efficientnet_lite0] [--images 1000] [--batch 50]

Baseline: ``server.engine.features.extract_features`` of the model's last feature layer (a full
forward with one pooling hook). Audit: ``server.engine.audit.audit_model`` over every conv and linear
layer (statistics, correlation, clusters, drive, CKA, separability). Both get the same tensors
(preprocessing is timed separately and excluded from both). Each is run ``--repeats`` times,
alternating, and the best time of each is compared. The claim is audit / extraction <= 2.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from server.config import REPO_ROOT, Settings
from server.datasets.store import DatasetStore
from server.engine.audit import audit_model
from server.engine.features import extract_features
from server.engine.imaging import preprocess
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager

FEATURE_LAYER = {"efficientnet_lite0": "global_pool", "digits_cnn": "classifier.2"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="efficientnet_lite0")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    torch.manual_seed(0)
    ensure_registered()
    loaded = ZooManager("cpu").load(args.model)
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), models_dir=REPO_ROOT / "models")
        store = DatasetStore.from_settings(settings)
        info = store.get("digits")
        idx = np.linspace(0, info.num_images - 1, min(args.images, info.num_images)).round().astype(int)
        labels, _ = store.labels("digits")
        t0 = time.perf_counter()
        x = torch.cat([preprocess(store.load_image("digits", int(i)), loaded.prep)[0] for i in idx])
        prep_s = time.perf_counter() - t0
    y = labels[idx]
    batches = [
        (loaded.to_input(x[i : i + args.batch]), y[i : i + args.batch]) for i in range(0, len(x), args.batch)
    ]
    layer = FEATURE_LAYER.get(args.model) or loaded.card.default_layer
    print(
        f"{args.model}: {len(x)} images {tuple(x.shape[1:])}, batch {args.batch}, {torch.get_num_threads()} threads"
    )
    print(f"preprocessing (excluded from both): {prep_s:.2f} s")

    def extraction() -> float:
        t = time.perf_counter()
        extract_features(loaded.model, layer, (b for b, _ in batches))
        return time.perf_counter() - t

    def audit() -> float:
        t = time.perf_counter()
        result = audit_model(loaded.model, batches)
        audit.summary = result.summary()  # type: ignore[attr-defined]
        return time.perf_counter() - t

    extraction()  # warm-up (allocator, oneDNN primitives)
    ext_times, audit_times = [], []
    for _ in range(args.repeats):
        ext_times.append(extraction())
        audit_times.append(audit())
    ext, aud = min(ext_times), min(audit_times)
    print(f"feature extraction ({layer}): {', '.join(f'{t:.2f}' for t in ext_times)} s -> best {ext:.2f} s")
    print(f"full audit: {', '.join(f'{t:.2f}' for t in audit_times)} s -> best {aud:.2f} s")
    s = audit.summary  # type: ignore[attr-defined]
    print(f"audit covered {s['layers']} layers, {s['filters']} filters; flagged {s['flagged']} {s['counts']}")
    pairs = ", ".join(f"{a / e:.2f}" for e, a in zip(ext_times, audit_times, strict=True))
    print(f"ratio per alternating pair: {pairs}")
    print(f"ratio audit / extraction = {aud / ext:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
