"""Checkpoint comparison: how much each layer and filter changed between snapshots."""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Collection
from dataclasses import asdict, dataclass
from typing import Any

import torch

from server.engine.audit.results import rounded
from server.engine.audit.thresholds import AuditThresholds
from server.errors import InvalidInputError


@dataclass
class LayerUpdate:
    layer: str
    relative_update: float  # ||W_b - W_a|| / ||W_a||
    filter_change: list[float]  # per output filter, ||ΔW_f|| / ||W_f||
    unchanged: list[int]  # filters whose relative change <= the threshold

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckpointComparison:
    a: str
    b: str
    layers: list[LayerUpdate]
    relative_update: float  # over all compared layers
    epochs: float | None  # epochs between the two, when both names carry one

    @property
    def per_epoch(self) -> float | None:
        return self.relative_update / self.epochs if self.epochs else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "a": self.a,
            "b": self.b,
            "relative_update": self.relative_update,
            "epochs": self.epochs,
            "relative_update_per_epoch": self.per_epoch,
            "unchanged_filters": sum(len(layer.unchanged) for layer in self.layers),
            "layers": [layer.to_dict() for layer in self.layers],
        }


def check_same_architecture(
    a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], names: tuple[str, str]
) -> None:
    """Raise InvalidInputError naming the differences unless both state dicts have the same keys and shapes."""
    missing = [k for k in a if k not in b]
    extra = [k for k in b if k not in a]
    shapes = [
        f"{k}: {tuple(a[k].shape)} vs {tuple(b[k].shape)}" for k in a if k in b and a[k].shape != b[k].shape
    ]
    if missing or extra or shapes:
        parts = []
        if missing:
            parts.append(
                f"only in '{names[0]}': {', '.join(missing[:5])}" + (" ..." if len(missing) > 5 else "")
            )
        if extra:
            parts.append(f"only in '{names[1]}': {', '.join(extra[:5])}" + (" ..." if len(extra) > 5 else ""))
        if shapes:
            parts.append(f"different shapes: {'; '.join(shapes[:5])}")
        raise InvalidInputError(
            f"Checkpoints '{names[0]}' and '{names[1]}' have different architectures: " + " | ".join(parts)
        )


_EPOCH_RE = re.compile(r"epoch[_-]?(\d+)", re.IGNORECASE)


def epoch_of(name: str) -> int | None:
    m = _EPOCH_RE.search(name)
    return int(m.group(1)) if m else None


def compare_state_dicts(
    a: dict[str, torch.Tensor],
    b: dict[str, torch.Tensor],
    names: tuple[str, str] = ("a", "b"),
    unchanged_update: float = AuditThresholds.unchanged_update,
) -> CheckpointComparison:
    """Per-layer relative update, per-filter change and never-changed filters between two checkpoints.

    Layers are the weight tensors with an output-filter dimension (``*.weight`` of rank >= 2).
    """
    AuditThresholds(unchanged_update=unchanged_update)  # validates the range
    check_same_architecture(a, b, names)
    layers = []
    total_delta = total_norm = 0.0
    for key, wa in a.items():
        if not key.endswith("weight") or wa.dim() < 2 or not wa.is_floating_point():
            continue
        wa64, wb64 = (
            wa.detach().double().reshape(wa.shape[0], -1),
            b[key].detach().double().reshape(wa.shape[0], -1),
        )
        delta = (wb64 - wa64).norm(dim=1)
        norm = wa64.norm(dim=1)
        change = torch.where(norm > 0, delta / norm.clamp_min(1e-300), torch.where(delta > 0, torch.inf, 0.0))
        total_delta += float((delta**2).sum())
        total_norm += float((norm**2).sum())
        layer_norm = float(norm.norm())
        layers.append(
            LayerUpdate(
                layer=key.removesuffix(".weight"),
                relative_update=float(delta.norm()) / layer_norm if layer_norm > 0 else float("inf"),
                filter_change=rounded(change.numpy(), 6),
                unchanged=[int(i) for i in torch.nonzero(change <= unchanged_update).flatten()],
            )
        )
    if not layers:
        raise InvalidInputError("The checkpoints hold no conv or linear weights to compare.")
    ea, eb = epoch_of(names[0]), epoch_of(names[1])
    return CheckpointComparison(
        a=names[0],
        b=names[1],
        layers=layers,
        relative_update=math.sqrt(total_delta / total_norm) if total_norm > 0 else float("inf"),
        epochs=float(eb - ea) if ea is not None and eb is not None and eb != ea else None,
    )


@dataclass(frozen=True)
class ChangedFilter:
    layer: str
    index: int
    change: float  # ||ΔW_f|| / ||W_f||


def most_changed_filters(
    comparison: CheckpointComparison, top: int, layers: Collection[str] | None = None
) -> list[ChangedFilter]:
    """The ``top`` filters of ``layers`` (default: every compared layer) whose weights moved most, relative to
    their size; ties keep the layer order and then the filter order."""
    if top < 1:
        raise InvalidInputError(f"Ask for at least one changed filter, not {top}.")
    known = [u.layer for u in comparison.layers]
    wanted = known if layers is None else [name for name in known if name in set(layers)]
    if layers is not None and not wanted:
        raise InvalidInputError(
            f"No compared weights in {', '.join(sorted(layers))}; layers with weights: {', '.join(known[:8])}."
        )
    found = [
        ChangedFilter(u.layer, i, float(c))
        for u in comparison.layers
        if u.layer in wanted
        for i, c in enumerate(u.filter_change)
    ]
    return sorted(found, key=lambda f: -f.change)[:top]  # sorted() is stable


def compare_series(
    checkpoints: list[tuple[str, dict[str, torch.Tensor]]],
    unchanged_update: float = AuditThresholds.unchanged_update,
) -> list[CheckpointComparison]:
    """Comparisons of each checkpoint with the next (e.g. training snapshots in epoch order)."""
    if len(checkpoints) < 2:
        raise InvalidInputError("Compare at least two checkpoints.")
    return [
        compare_state_dicts(sa, sb, (na, nb), unchanged_update)
        for (na, sa), (nb, sb) in itertools.pairwise(checkpoints)
    ]
