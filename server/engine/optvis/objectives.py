"""What to maximise. An objective reads a lookup of layer outputs (never hooks) and returns a scalar
per batch; objectives compose with ``+``, ``-`` and scalar ``*``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from server.errors import InvalidInputError

LOGITS = "<logits>"  # the model's output, in the lookup next to dotted layer names

Lookup = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class Objective:
    fn: Callable[[Lookup], torch.Tensor]
    layers: frozenset[str]
    description: str

    def __call__(self, acts: Lookup) -> torch.Tensor:
        return self.fn(acts)

    def __add__(self, other: Objective) -> Objective:
        return Objective(
            lambda a: self(a) + other(a),
            self.layers | other.layers,
            f"{self.description} + {other.description}",
        )

    def __mul__(self, k: float) -> Objective:
        return Objective(lambda a: k * self(a), self.layers, f"{k} * {self.description}")

    __rmul__ = __mul__

    def __neg__(self) -> Objective:
        return self * -1.0

    def __sub__(self, other: Objective) -> Objective:
        return self + (-other)

    @property
    def needs_logits(self) -> bool:
        return LOGITS in self.layers


def _check_index(what: str, index: int, n: int, layer: str) -> None:
    if not 0 <= index < n:
        raise InvalidInputError(
            f"{what} {index} is out of range for '{layer}' with {n} ({what.lower()}s 0..{n - 1})."
        )


def channel(layer: str, index: int) -> Objective:
    """The mean activation of one filter (channel) of ``layer``."""

    def fn(acts: Lookup) -> torch.Tensor:
        t = acts[layer]
        _check_index("Channel", index, t.shape[1], layer)
        return t[:, index].reshape(t.shape[0], -1).mean(dim=1)

    return Objective(fn, frozenset([layer]), f"{layer}:{index}")


def channels(layer: str, indices: list[int]) -> Objective:
    """Image i of a batch maximises the mean activation of filter ``indices[i]`` of ``layer`` (one
    batched render for many filters: :func:`~server.engine.optvis.render.render_batch`)."""
    wanted = [int(i) for i in indices]

    def fn(acts: Lookup) -> torch.Tensor:
        t = acts[layer]
        for i in wanted:
            _check_index("Channel", i, t.shape[1], layer)
        if t.shape[0] != len(wanted):
            raise InvalidInputError(
                f"{len(wanted)} filters need a batch of {len(wanted)} images, got {t.shape[0]}."
            )
        picked = t[torch.arange(len(wanted), device=t.device), torch.tensor(wanted, device=t.device)]
        return picked.reshape(len(wanted), -1).mean(dim=1)

    return Objective(fn, frozenset([layer]), f"{layer}:{wanted}")


def neuron(layer: str, index: int) -> Objective:
    """One unit of ``layer``, by flat index into its (C, H, W) or (F,) output."""

    def fn(acts: Lookup) -> torch.Tensor:
        t = acts[layer]
        flat = t.reshape(t.shape[0], -1)
        _check_index("Neuron", index, flat.shape[1], layer)
        return flat[:, index]

    return Objective(fn, frozenset([layer]), f"{layer}[{index}]")


def class_logit(index: int) -> Objective:
    """The pre-softmax score of class ``index``."""

    def fn(acts: Lookup) -> torch.Tensor:
        t = acts[LOGITS].reshape(acts[LOGITS].shape[0], -1)
        _check_index("Class", index, t.shape[1], "the model output")
        return t[:, index]

    return Objective(fn, frozenset([LOGITS]), f"class {index}")
