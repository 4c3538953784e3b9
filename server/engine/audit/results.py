"""The audit's data: batches in; filter flags, per-layer findings and the whole result out."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from server.engine.audit.checkerboard import Checkerboard
from server.engine.audit.thresholds import AuditThresholds

KINDS = ("dead", "saturated", "low_variance", "redundant")


@dataclass
class FilterFlag:
    layer: str
    filter: int
    kind: str  # one of KINDS (a filter is reported once, under the first kind that applies)
    value: float  # the measured quantity that crossed the threshold
    detail: str
    partner: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LayerAudit:
    name: str
    type: str
    channels: int
    response: str  # module whose output was judged
    activation: str | None
    rectified: bool
    positive_weight_share: float
    positive_only: bool
    active_share: list[float]
    std: list[float]
    saturated_share: list[float] | None
    clusters: list[list[int]]
    order: list[int]
    drive: list[dict[str, Any]] | None  # CNNVis edges to the next layer's clusters
    next_layer: str | None
    separability: float | None
    counts: dict[str, int]
    sparsity: dict[str, Any] | None = None  # zero share and Hoyer sparsity, for the layer and per filter
    checkerboard: dict[str, Any] | None = None  # strided layers: architecture flag and measured score
    mean: list[float] | None = None  # (C,) mean response over every image and position
    correlation: np.ndarray | None = None  # (C, C), kept out of to_dict (stored as an artifact)
    pooled: np.ndarray | None = None  # (N, C) mean response per image, kept out of to_dict

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("correlation", "pooled")}


@dataclass
class AuditResult:
    layers: list[LayerAudit]
    flags: list[FilterFlag]
    positive_layers: list[str]
    cka_layers: list[str]
    cka: list[list[float]]
    redundant_layer_pairs: list[dict[str, Any]]
    thresholds: AuditThresholds
    images: int
    labelled: bool
    skipped_layers: list[str]
    sparsity: dict[str, Any] | None = None  # the per-layer sparsity as a curve over depth
    checkerboard: Checkerboard | None = None

    @property
    def total_filters(self) -> int:
        return sum(layer.channels for layer in self.layers)

    def summary(self) -> dict[str, Any]:
        """Counts and shares (percent of all audited filters) per kind, plus layer-level findings."""
        total = max(self.total_filters, 1)
        counts = {k: sum(1 for f in self.flags if f.kind == k) for k in KINDS}
        return {
            "layers": len(self.layers),
            "filters": self.total_filters,
            "images": self.images,
            "counts": counts,
            "percent": {k: 100.0 * v / total for k, v in counts.items()},
            "flagged": len(self.flags),
            "flagged_percent": 100.0 * len(self.flags) / total,
            "positive_layers": len(self.positive_layers),
            "redundant_layers": len(self.redundant_layer_pairs),
            "clean": not self.flags and not self.positive_layers and not self.redundant_layer_pairs,
        }

    def flagged(self, kinds: Iterable[str] = KINDS) -> dict[str, list[int]]:
        """{layer: sorted filter indices} flagged as any of ``kinds``."""
        kinds = set(kinds)
        out: dict[str, list[int]] = {}
        for f in self.flags:
            if f.kind in kinds:
                out.setdefault(f.layer, []).append(f.filter)
        return {k: sorted(v) for k, v in out.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary(),
            "thresholds": self.thresholds.to_dict(),
            "labelled": self.labelled,
            "layers": [layer.to_dict() for layer in self.layers],
            "flags": [f.to_dict() for f in self.flags],
            "positive_layers": self.positive_layers,
            "cka": {"layers": self.cka_layers, "matrix": self.cka},
            "redundant_layer_pairs": self.redundant_layer_pairs,
            "separability": [
                {"layer": layer.name, "purity": layer.separability}
                for layer in self.layers
                if layer.separability is not None
            ],
            "skipped_layers": self.skipped_layers,
            "sparsity": self.sparsity,
            "checkerboard": None if self.checkerboard is None else self.checkerboard.to_dict(),
        }


Batch = tuple[torch.Tensor, torch.Tensor | np.ndarray | None]
Progress = Callable[[float, str], None]


def rounded(a: np.ndarray, digits: int = 5) -> list[float]:
    return [float(v) for v in np.round(np.asarray(a, dtype=np.float64), digits)]
