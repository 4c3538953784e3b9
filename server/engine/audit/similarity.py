"""How filters and layers relate: CNNVis clusters and drive, linear CKA, class separability."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

# --- CNNVis clusters and the drive between them ----------------------------------------------------------


def correlation_clusters(correlation: np.ndarray, threshold: float) -> tuple[list[list[int]], list[int]]:
    """CNNVis-style clusters: average linkage on 1 - correlation cut at ``threshold``.

    Returns the clusters (largest first) and a filter order that puts each cluster together
    (dendrogram leaf order), for heat maps.
    """
    c = correlation.shape[0]
    if c < 2:
        return [list(range(c))], list(range(c))
    from scipy.cluster.hierarchy import fcluster, leaves_list, linkage
    from scipy.spatial.distance import squareform

    dist = np.clip(1.0 - correlation, 0.0, 2.0)
    dist = (dist + dist.T) / 2
    np.fill_diagonal(dist, 0.0)
    z = linkage(squareform(dist, checks=False), method="average")
    order = [int(i) for i in leaves_list(z)]
    labels = fcluster(z, t=1.0 - threshold, criterion="distance")
    groups: dict[int, list[int]] = {}
    for i in order:
        groups.setdefault(int(labels[i]), []).append(i)
    clusters = sorted(groups.values(), key=lambda g: (-len(g), order.index(g[0])))
    return clusters, order


def input_drive(weight: torch.Tensor, groups: int, in_rms: np.ndarray) -> np.ndarray | None:
    """(C_out, C_in) drive of each input channel on each output unit: sum |w| x the input's RMS response.

    None when the layer's input does not line up with ``in_rms`` channel for channel.
    """
    w = weight.detach().cpu().float().abs()
    c_in = in_rms.shape[0]
    if w.dim() == 2:  # linear; a flattened (C, H, W) input maps feature f to channel f // (H*W)
        if w.shape[1] % c_in:
            return None
        per = w.shape[1] // c_in
        e = w.reshape(w.shape[0], c_in, per).sum(2).numpy()
    else:
        c_out = w.shape[0]
        if w.shape[1] * groups != c_in:
            return None
        per_group = w.reshape(c_out, w.shape[1], -1).sum(2).numpy()
        e = np.zeros((c_out, c_in))
        out_per_group = c_out // groups
        for g in range(groups):
            rows = slice(g * out_per_group, (g + 1) * out_per_group)
            e[rows, g * w.shape[1] : (g + 1) * w.shape[1]] = per_group[rows]
    return e * np.asarray(in_rms)[None, :]


def cluster_drive(
    drive: np.ndarray,
    source_clusters: list[list[int]],
    target_clusters: list[list[int]],
    top: int = 3,
    max_sources: int = 32,
) -> list[dict[str, Any]]:
    """CNNVis edges: for the ``max_sources`` source clusters that send the most, their share of the next
    layer's total input drive and the ``top`` target clusters that receive the largest share of their
    input from them (cluster numbers index the ``clusters`` lists)."""
    src_of = np.empty(drive.shape[1], dtype=np.int64)
    for k, members in enumerate(source_clusters):
        src_of[members] = k
    tgt_of = np.empty(drive.shape[0], dtype=np.int64)
    for k, members in enumerate(target_clusters):
        tgt_of[members] = k
    by_target = np.zeros((len(target_clusters), drive.shape[1]))
    np.add.at(by_target, tgt_of, drive)
    between = np.zeros((len(source_clusters), len(target_clusters)))
    np.add.at(between, src_of, by_target.T)
    between = between.T  # (targets, sources)
    received = between.sum(1, keepdims=True)
    shares = np.divide(between, received, out=np.zeros_like(between), where=received > 0)
    total = float(between.sum()) or 1.0
    sent = between.sum(0)
    out = []
    for k in np.argsort(-sent, kind="stable")[:max_sources]:
        best = np.argsort(-shares[:, k], kind="stable")[:top]
        out.append(
            {
                "cluster": int(k),
                "size": len(source_clusters[k]),
                "share": float(sent[k]) / total,
                "targets": [{"cluster": int(t), "share": float(shares[t, k])} for t in best],
            }
        )
    return out


# --- layer similarity and separability -------------------------------------------------------------------


def centred_gram(features: np.ndarray) -> np.ndarray:
    """The doubly centred linear Gram matrix of (N, C) features."""
    x = np.asarray(features, dtype=np.float64)
    x = x - x.mean(0, keepdims=True)
    return x @ x.T


def linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) between (N, C1) and (N, C2) features of the same N inputs."""
    return cka_from_grams([centred_gram(x), centred_gram(y)])[0, 1]


def cka_from_grams(grams: list[np.ndarray]) -> np.ndarray:
    """The (L, L) linear CKA matrix from centred Gram matrices; constant layers get 0 off the diagonal."""
    flat = np.stack([g.ravel() for g in grams])
    hsic = (flat @ flat.T).astype(np.float64)
    norm = np.sqrt(np.clip(np.diag(hsic), 0, None))
    denom = np.outer(norm, norm)
    cka = np.divide(hsic, denom, out=np.zeros_like(hsic), where=denom > 0)
    np.fill_diagonal(cka, 1.0)
    return np.clip(cka, 0.0, 1.0)


def cka_between(grams_a: list[np.ndarray], grams_b: list[np.ndarray]) -> np.ndarray:
    """The (La, Lb) linear CKA between every layer of one network and every layer of another, from the
    centred Gram matrices of both on the same N inputs (which layer of A corresponds to which of B)."""
    if not grams_a or not grams_b:
        return np.zeros((len(grams_a), len(grams_b)))
    return cka_from_grams([*grams_a, *grams_b])[: len(grams_a), len(grams_a) :]


def best_matches(cka: np.ndarray) -> list[int]:
    """For each row (a layer of A), the column (layer of B) of highest CKA; ties go to the earlier layer."""
    return [int(np.argmax(row)) for row in np.asarray(cka)]


def knn_purity_from_gram(gram: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Mean share of each point's ``k`` nearest neighbours (Euclidean, from a Gram matrix) with its label."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    if n < 2:
        return float("nan")
    k = max(1, min(k, n - 1))
    sq = np.diag(gram)
    dist = sq[:, None] + sq[None, :] - 2 * gram
    np.fill_diagonal(dist, np.inf)
    nn_idx = np.argpartition(dist, k - 1, axis=1)[:, :k]
    return float((labels[nn_idx] == labels[:, None]).mean())
