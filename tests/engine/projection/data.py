"""Separated Gaussian blobs and fast t-SNE settings shared by the projection tests."""

from __future__ import annotations

import numpy as np


def blobs(n_per: int = 30, centers: int = 3, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=10.0, size=(centers, dim))
    x = np.concatenate([m + rng.normal(size=(n_per, dim)) for m in means])
    return x, np.repeat(np.arange(centers), n_per)


FAST = {"perplexity": 10, "early_exaggeration_iter": 30, "n_iter": 60, "frame_every": 10}
