"""Is a DeepVis class image a robust feature or a fooling image? A second, independent model with the same
classes classifies it (Nguyen et al. 2015: images a network is certain of that mean nothing to another).

Pure: probabilities in, a verdict out; which model gives the second opinion is decided by the caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np

VerdictLabel = Literal["robust feature", "fooling image"]
ROBUST: Final = "robust feature"
FOOLING: Final = "fooling image"

SURE = 0.5  # the rendered model is "sure" of the target at this softmax probability or more
TOP_K = 5  # the other model "agrees" when the target is among its top 5


@dataclass(frozen=True)
class Verdict:
    label: VerdictLabel
    own_probability: float  # the rendered model's probability of the target
    own_sure: bool  # own_probability >= SURE: the rendered model is sure of the target
    other_probability: float  # the other model's probability of the target
    other_rank: int  # 1-based rank of the target among the other model's classes
    other_top: list[tuple[int, float]]  # the other model's top k: (class index, probability)

    def to_dict(self) -> dict[str, object]:
        return {
            "verdict": self.label,
            "own_probability": self.own_probability,
            "own_sure": self.own_sure,
            "other_probability": self.other_probability,
            "other_rank": self.other_rank,
            "other_top": [{"index": i, "probability": p} for i, p in self.other_top],
        }


def verdict(
    target: int, own_probability: float, other_probs: np.ndarray, *, sure: float = SURE, top_k: int = TOP_K
) -> Verdict:
    """One of the issue's two verdicts: ``robust feature`` when the other model agrees (``target`` in its
    top ``top_k``), else ``fooling image``.

    The issue defines "fooling image" as "the rendered model is sure, but the other model disagrees". The
    image was optimised to raise the rendered model's score of ``target``, so the rendered model is the one
    that "sees" the class in it; when the other model does not, the image fooled the rendered model and only
    it, whatever the probability the render reached. So disagreement alone decides, and ``own_sure`` says
    whether the rendered model also passed the issue's "sure" bar (``own_probability >= sure``): a fooling
    image with ``own_sure`` false is a render that has not converged yet, which the dashboard says next to
    the verdict instead of inventing a third verdict."""
    probs = np.asarray(other_probs, dtype=np.float64).reshape(-1)
    if not 0 <= target < probs.size:
        raise ValueError(f"target {target} is out of range for {probs.size} classes")
    if not 0 < top_k <= probs.size:
        raise ValueError(f"top_k must be in 1..{probs.size}, got {top_k}")
    order = np.argsort(-probs, kind="stable")
    rank = int(np.nonzero(order == target)[0][0]) + 1
    label: VerdictLabel = ROBUST if rank <= top_k else FOOLING
    top = [(int(i), float(probs[i])) for i in order[:top_k]]
    own = float(own_probability)
    return Verdict(label, own, own >= sure, float(probs[target]), rank, top)
