"""Tiny deterministic models for the neuron audit: a clean DigitsCNN and copies with planted defects.

The clean model has seeded orthogonal weights (first-layer filters with zero sum) and every unit
calibrated to zero mean and unit variance on the digits, so no unit is dead, constant, duplicated or
positive-only. The trained digits_cnn is not clean: training leaves many ReLU units dead.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from server.engine.hooks import capture
from server.engine.layers import weighted_layers
from server.zoo.digits import DigitsCNN, digits_split


@dataclass(frozen=True)
class Plan:
    """The planted defects: the audit must find exactly these."""

    dead: dict[str, tuple[int, ...]]
    copies: dict[str, tuple[tuple[int, int], ...]]  # layer -> (source, copy); the copy is flagged
    positive_layer: str

    def expected_filters(self) -> set[tuple[str, int, str]]:
        out = {(layer, f, "dead") for layer, fs in self.dead.items() for f in fs}
        out |= {(layer, dst, "redundant") for layer, pairs in self.copies.items() for _src, dst in pairs}
        return out


PLAN = Plan(
    dead={"features.2": (4, 9, 20)},
    copies={"features.5": ((3, 10), (7, 40))},
    positive_layer="classifier.4",
)


@functools.lru_cache(maxsize=1)
def digits_inputs() -> tuple[torch.Tensor, np.ndarray]:
    """All 1,797 digits as (N, 1, 8, 8) floats in [0, 1] and their labels."""
    s = digits_split()
    x = torch.from_numpy(np.concatenate([s.x_train, s.x_test]))
    return x, np.concatenate([s.y_train, s.y_test])


def clean_digits_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = DigitsCNN().eval()
    x, _ = digits_inputs()
    with torch.no_grad():
        for name, module in weighted_layers(model):
            w = module.weight
            q = torch.empty(w.shape[0], w[0].numel())
            nn.init.orthogonal_(q)
            if name == "features.0":
                q -= q.mean(1, keepdim=True)
            w.copy_(q.reshape(w.shape))
            module.bias.zero_()
        for name, module in weighted_layers(model):
            with capture(model, [name]) as out:
                model(x)
            a = out[name]
            dims = (0, 2, 3) if a.dim() == 4 else (0,)
            mean, std = a.mean(dims), a.std(dims)
            module.weight.div_(std.reshape(-1, *[1] * (module.weight.dim() - 1)))
            module.bias.copy_(-mean / std)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def planted_digits_model(plan: Plan = PLAN, seed: int = 0) -> nn.Module:
    """The clean model with ``plan``'s filters forced dead (zero weights, bias -1), filters copied
    from others, and one layer's weights made all positive."""
    model = copy.deepcopy(clean_digits_model(seed))
    modules = dict(model.named_modules())
    with torch.no_grad():
        for layer, filters in plan.dead.items():
            for f in filters:
                modules[layer].weight[f] = 0.0
                modules[layer].bias[f] = -1.0
        for layer, pairs in plan.copies.items():
            for src, dst in pairs:
                modules[layer].weight[dst] = modules[layer].weight[src]
                modules[layer].bias[dst] = modules[layer].bias[src]
        modules[plan.positive_layer].weight.abs_()
    return model


def digits_batches(batch_size: int = 256, labelled: bool = True):
    x, y = digits_inputs()
    return [
        (x[i : i + batch_size], y[i : i + batch_size] if labelled else None)
        for i in range(0, len(x), batch_size)
    ]


CLEAN_ID, PLANTED_ID = "audit_clean", "audit_planted"


@contextmanager
def audit_models_registered() -> Iterator[tuple[str, str]]:
    """The clean and planted models in the zoo as ``audit_clean`` and ``audit_planted``, removed on exit
    (so that contract tests over every registered model never see them)."""
    from server.zoo.registry import unregister_model

    try:
        yield register_audit_models()
    finally:
        unregister_model(CLEAN_ID)
        unregister_model(PLANTED_ID)


def register_audit_models() -> tuple[str, str]:
    """Register the clean and planted models in the zoo as ``audit_clean`` and ``audit_planted``."""
    from server.zoo.builtin import ensure_registered
    from server.zoo.registry import ModelSpec, WeightsLocation, get_spec, register_model

    ensure_registered()
    digits_card = get_spec("digits_cnn").card
    for model_id, build in ((CLEAN_ID, clean_digits_model), (PLANTED_ID, planted_digits_model)):
        register_model(
            ModelSpec(
                card=replace(digits_card, id=model_id, description=f"{model_id} (tests of the neuron audit)"),
                build=build,
                locate_weights=lambda: WeightsLocation("available", None, "hand-set (tests)"),
                load_weights=lambda _model, _loc: None,
                tags=("test",),
            )
        )
    return CLEAN_ID, PLANTED_ID
