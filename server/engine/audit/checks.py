"""Per-filter checks on plain arrays: dead, saturated, near-constant, redundant, positive weights."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch


def dead_filters(active_share: np.ndarray, threshold: float, maximum: np.ndarray | None = None) -> np.ndarray:
    """Indices of filters never positive (``maximum <= 0`` when given, else a zero share), or positive on
    less than ``threshold`` of positions."""
    share = np.asarray(active_share, dtype=np.float64)
    never = share <= 0 if maximum is None else np.asarray(maximum) <= 0
    return np.flatnonzero(never | (share < threshold))


def saturated_units(saturated_share: np.ndarray, threshold: float) -> np.ndarray:
    """Indices of units saturated on at least ``threshold`` of positions."""
    return np.flatnonzero(np.asarray(saturated_share, dtype=np.float64) >= threshold)


def low_variance_filters(std: np.ndarray, ratio: float, exclude: Iterable[int] = ()) -> np.ndarray:
    """Filters whose std is below ``ratio`` x the median std of the layer's other, non-excluded filters."""
    std = np.asarray(std, dtype=np.float64)
    keep = np.ones(std.shape[0], bool)
    keep[list(exclude)] = False
    ref = std[keep & (std > 0)]
    if ref.size == 0:
        return np.flatnonzero(keep & (std <= 0))
    return np.flatnonzero(keep & (std < ratio * float(np.median(ref))))


def weight_cosine(weight: torch.Tensor | np.ndarray) -> np.ndarray:
    """(C, C) cosine similarity between the flattened weights of each output filter; zero filters get 0."""
    w = torch.as_tensor(weight).detach().cpu().float()
    w = w.reshape(w.shape[0], -1)
    norm = w.norm(dim=1)
    unit = w / torch.where(norm > 0, norm, 1.0)[:, None]
    cos = (unit @ unit.T).double().numpy()
    np.fill_diagonal(cos, 1.0)
    return cos


def positive_weight_share(weight: torch.Tensor | np.ndarray) -> float:
    """Share of the non-zero weights that are positive (1.0 for an all-positive layer)."""
    w = np.asarray(weight.detach().cpu().float() if isinstance(weight, torch.Tensor) else weight)
    nonzero = int(np.count_nonzero(w))
    return float((w > 0).sum() / nonzero) if nonzero else 0.0


@dataclass(frozen=True)
class Redundancy:
    filter: int
    partner: int  # the filter it duplicates (kept)
    correlation: float
    cosine: float | None


def redundant_filters(
    correlation: np.ndarray,
    cosine: np.ndarray | None,
    corr_threshold: float,
    cos_threshold: float,
    exclude: Iterable[int] = (),
) -> list[Redundancy]:
    """Filters that duplicate another (activation correlation or weight cosine above threshold).

    Filters linked by either test form groups; the lowest index of each group is kept and the others
    are reported with it as partner.
    """
    c = correlation.shape[0]
    excluded = set(int(i) for i in exclude)
    linked = correlation >= corr_threshold
    if cosine is not None:
        linked = linked | (cosine >= cos_threshold)
    np.fill_diagonal(linked, False)
    parent = list(range(c))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in zip(*np.nonzero(np.triu(linked, 1)), strict=True):
        if int(i) in excluded or int(j) in excluded:
            continue
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    out = []
    for i in range(c):
        root = find(i)
        if root != i:
            out.append(
                Redundancy(
                    i, root, float(correlation[i, root]), None if cosine is None else float(cosine[i, root])
                )
            )
    return out
