"""Every threshold of the audit, validated in one place (see docs/AUDIT.md)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from server.errors import InvalidInputError


@dataclass(frozen=True)
class AuditThresholds:
    """Every threshold of the audit, each a number in [0, 1] (see docs/AUDIT.md)."""

    dead_share: float = 0.001  # dead: positive on less than this share of positions (or never)
    saturation_level: float = 0.99  # a sigmoid output >= this or <= 1 - this; |tanh| >= this
    saturated_share: float = 0.95  # saturated: saturated on at least this share of positions
    low_variance_ratio: float = 0.01  # near-constant: std below this fraction of the layer's median std
    redundant_correlation: float = 0.98  # redundant: activation correlation with another filter >= this
    weight_cosine: float = 0.99  # redundant: weight cosine similarity with another filter >= this
    cluster_correlation: float = 0.5  # CNNVis clusters: average-linkage correlation >= this
    positive_share: float = 0.95  # positive-only layer: share of non-zero weights that are > 0 >= this
    layer_cka: float = 0.99  # redundant layer pair: linear CKA between consecutive layers >= this
    unchanged_update: float = 1e-6  # checkpoints: a filter whose relative change is <= this never changed

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise InvalidInputError(f"Threshold '{f.name}' must be a number in [0, 1], got {value!r}.")
            if not 0.0 <= value <= 1.0:
                raise InvalidInputError(f"Threshold '{f.name}' must be in [0, 1], got {value}.")

    @classmethod
    def from_mapping(cls, values: dict[str, Any] | None) -> AuditThresholds:
        """Defaults overridden by ``values``; unknown names are an error that lists the valid ones."""
        values = dict(values or {})
        valid = [f.name for f in fields(cls)]
        unknown = [k for k in values if k not in valid]
        if unknown:
            raise InvalidInputError(f"Unknown threshold(s) {', '.join(unknown)}; valid: {', '.join(valid)}.")
        return cls(**values)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)
