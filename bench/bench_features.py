"""Feature-extraction throughput vs a plain forward on the same batches (issue 5), measured in one run.

Variants, each timed in alternation on the same preprocessed Lite0 batches (224 px):

- plain:        ``model(x)`` under inference_mode - the baseline;
- ours mid:     ``extract_features(model, "blocks.3", ...)`` - pooled inside the hook, forward stopped
                after the layer;
- ours last:    ``extract_features(model, "bn2", ...)`` - the last feature layer: nearly a full forward;
- naive mid:    ``capture`` (cloned output) + full forward + pooling afterwards.

Prints images/second and the ratio of each variant to the plain forward (> 1 is faster).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import interleaved_medians
from server.engine.features import extract_features, pool_activation
from server.engine.hooks import capture
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager

BATCH, N_BATCHES = 16, 2


def main() -> None:
    torch.manual_seed(0)
    ensure_registered()
    lm = ZooManager("auto").load("efficientnet_lite0")
    model = lm.model
    batches = [lm.to_input(torch.randn(BATCH, 3, 224, 224)) for _ in range(N_BATCHES)]
    n = BATCH * N_BATCHES
    print(
        f"device: {lm.device}, torch threads: {torch.get_num_threads()}, {n} images of 224 px in batches of {BATCH}"
    )

    def plain() -> None:
        with torch.inference_mode():
            for x in batches:
                model(x)

    def naive_mid() -> None:
        out = []
        with capture(model, ["blocks.3"]) as acts, torch.inference_mode():
            for x in batches:
                model(x)
                out.append(pool_activation(acts["blocks.3"], "mean"))

    variants = {
        "plain forward": plain,
        "ours blocks.3 (mid)": lambda: extract_features(model, "blocks.3", batches, "mean"),
        "ours bn2 (last)": lambda: extract_features(model, "bn2", batches, "mean"),
        "naive blocks.3": naive_mid,
    }
    medians = interleaved_medians(variants, repeats=9, warmup=1)
    base = medians["plain forward"]
    for name, sec in medians.items():
        print(f"{name:22s} {n / sec:8.1f} img/s   ratio vs plain forward: {base / sec:5.2f}x")


if __name__ == "__main__":
    main()
