"""How pure are the classes of a layer's representation? k-NN purity, confused pairs, trustworthiness.

- ``knn_purity``: for each point, the share of its k nearest neighbours (itself excluded) with
  its label; averaged per class and overall. Computed the same way in the 2-D embedding and in
  the original feature space, so the two can be compared.
- ``confused_pairs``: class pairs whose points most often have each other as neighbours.
- ``trustworthiness``: Venna & Kaski's score of how far a projection invents neighbours
  (scikit-learn's implementation, on a fixed random subsample for large N).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.errors import InvalidInputError

TRUST_MAX_POINTS = 4000  # sklearn's trustworthiness ranks all pairs: O(N^2) memory


def knn_indices(x: np.ndarray, k: int, metric: str = "euclidean") -> np.ndarray:
    """(N, k) indices of each point's k nearest neighbours, the point itself excluded."""
    from sklearn.neighbors import NearestNeighbors

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if not 1 <= k < n:
        raise InvalidInputError(f"k must be between 1 and N-1 = {n - 1}; got {k}.")
    nn = NearestNeighbors(n_neighbors=k + 1, metric=metric).fit(x)
    idx = nn.kneighbors(x, return_distance=False)
    # Drop each row's own index (not always in column 0 when there are duplicate points).
    out = np.empty((n, k), dtype=np.int64)
    for i in range(n):
        row = idx[i][idx[i] != i]
        out[i] = row[:k]
    return out


@dataclass(frozen=True)
class Purity:
    """Overall and per-class k-NN purity, and each class's neighbour-label counts (for confusions)."""

    k: int
    overall: float
    per_class: dict[str, float]
    neighbour_counts: np.ndarray  # (C, C): row = class of the point, column = class of its neighbour

    def to_dict(self) -> dict[str, Any]:
        return {"k": self.k, "overall": self.overall, "per_class": self.per_class}


def knn_purity(
    x: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    k: int = 10,
    metric: str = "euclidean",
) -> Purity:
    """k-NN label purity of the points ``x`` (N, D), per class and overall (mean over points)."""
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape[0] != np.asarray(x).shape[0]:
        raise InvalidInputError(f"{labels.shape[0]} labels for {np.asarray(x).shape[0]} points.")
    k = min(k, labels.shape[0] - 1)
    idx = knn_indices(x, k, metric)
    same = labels[idx] == labels[:, None]
    per_point = same.mean(axis=1)
    c = len(class_names)
    counts = np.zeros((c, c), dtype=np.int64)
    np.add.at(counts, (np.repeat(labels, k), labels[idx].ravel()), 1)
    per_class = {
        str(class_names[i]): float(per_point[labels == i].mean()) for i in range(c) if (labels == i).any()
    }
    return Purity(k, float(per_point.mean()), per_class, counts)


def confused_pairs(
    purity: Purity, class_names: tuple[str, ...] | list[str], top: int = 5
) -> list[dict[str, Any]]:
    """Class pairs ranked by how often their points are each other's neighbours (share of neighbour slots)."""
    counts = purity.neighbour_counts.astype(np.float64)
    totals = counts.sum(axis=1)
    pairs: list[dict[str, Any]] = []
    c = counts.shape[0]
    for a in range(c):
        for b in range(a + 1, c):
            mixed = counts[a, b] + counts[b, a]
            if mixed == 0:
                continue
            slots = totals[a] + totals[b]
            pairs.append(
                {
                    "a": str(class_names[a]),
                    "b": str(class_names[b]),
                    "neighbours": int(mixed),
                    "share": float(mixed / slots) if slots else 0.0,
                }
            )
    pairs.sort(key=lambda p: (-float(p["share"]), -int(p["neighbours"]), p["a"], p["b"]))
    return pairs[:top]


def trustworthiness(
    features: np.ndarray,
    embedding: np.ndarray,
    k: int = 10,
    max_points: int = TRUST_MAX_POINTS,
    seed: int = 0,
) -> float:
    """Trustworthiness in [0, 1] of ``embedding`` w.r.t. ``features`` (subsampled above ``max_points``)."""
    from sklearn.manifold import trustworthiness as sk_trust

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(embedding, dtype=np.float64)
    n = x.shape[0]
    if n > max_points:
        keep = np.sort(np.random.default_rng(seed).choice(n, max_points, replace=False))
        x, y, n = x[keep], y[keep], max_points
    k = max(1, min(k, (n - 1) // 2 - 1))
    return float(sk_trust(x, y, n_neighbors=k))


def purity_report(
    features: np.ndarray,
    embedding: np.ndarray,
    labels: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    k: int = 10,
    top_pairs: int = 5,
) -> dict[str, Any]:
    """Everything the projections page shows about class purity for one projection."""
    in_embedding = knn_purity(embedding, labels, class_names, k)
    in_features = knn_purity(features, labels, class_names, k)
    return {
        "k": in_embedding.k,
        "embedding": in_embedding.to_dict(),
        "features": in_features.to_dict(),
        "confused_pairs": confused_pairs(in_features, class_names, top_pairs),
        "confused_pairs_embedding": confused_pairs(in_embedding, class_names, top_pairs),
        "trustworthiness": trustworthiness(features, embedding, k),
    }
