"""Where each layer's units are judged.

A layer's *response* is the output of the first activation that follows it in execution order
(skipping norms, dropout and identities), so that a conv followed by BatchNorm + ReLU6 is judged after
the ReLU6. A layer with no activation after it (logits, linear projections) is judged on its own
output and gets no dead check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from server.engine.hooks import first_tensor, on_outputs
from server.engine.layers import CONV_TYPES, LINEAR_TYPES, NORM_TYPES
from server.errors import InvalidInputError

RECTIFIERS: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.CELU,
    nn.SELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Hardswish,
)
UNIT_SATURATING: tuple[type[nn.Module], ...] = (nn.Sigmoid, nn.Hardsigmoid)  # outputs in [0, 1]
SYMMETRIC_SATURATING: tuple[type[nn.Module], ...] = (nn.Tanh, nn.Hardtanh)  # outputs in [-1, 1]
PASS_THROUGH: tuple[type[nn.Module], ...] = (nn.Identity, nn.Dropout, nn.Dropout2d, *NORM_TYPES)


@dataclass(frozen=True)
class ResponsePoint:
    """Layer ``layer`` is judged at the ``call``-th output (0-based, per forward) of module ``module``."""

    layer: str
    module: str
    call: int
    activation: str | None  # class name of the activation, None when judged on the layer's own output
    rectified: bool  # a ReLU-like activation: the dead check applies
    saturating: str | None  # "unit" (sigmoid-like), "symmetric" (tanh-like) or None
    nonnegative: bool = False  # the activation never outputs a negative value (ReLU, ReLU6)


def _leaf_calls(model: nn.Module, example: torch.Tensor) -> list[tuple[str, int, tuple[int, ...]]]:
    """(module name, call index, output shape) of every leaf and weighted module, in completion order."""
    names = [
        n
        for n, m in model.named_modules()
        if n and (not any(True for _ in m.children()) or isinstance(m, CONV_TYPES + LINEAR_TYPES))
    ]
    calls: list[tuple[str, int, tuple[int, ...]]] = []

    def record(name: str, call: int, output: Any) -> None:
        t = first_tensor(output)
        if t is not None:
            calls.append((name, call, tuple(t.shape)))

    with on_outputs(model, names, record), torch.inference_mode():
        model(example)
    return calls


def response_points(model: nn.Module, example: torch.Tensor) -> dict[str, ResponsePoint]:
    """For each conv and linear layer called in a forward of ``example``, where its units are judged."""
    modules = dict(model.named_modules())
    calls = _leaf_calls(model, example)
    points: dict[str, ResponsePoint] = {}
    for i, (name, call, shape) in enumerate(calls):
        module = modules[name]
        if not isinstance(module, CONV_TYPES + LINEAR_TYPES) or name in points:
            continue
        point = ResponsePoint(name, name, call, None, False, None)
        for next_name, next_call, next_shape in calls[i + 1 :]:
            nxt = modules[next_name]
            if next_shape != shape:
                break
            if isinstance(nxt, PASS_THROUGH) and not isinstance(nxt, (*RECTIFIERS, *UNIT_SATURATING)):
                continue
            act = type(nxt).__name__
            if isinstance(nxt, RECTIFIERS):
                nonneg = isinstance(nxt, (nn.ReLU, nn.ReLU6))
                point = ResponsePoint(name, next_name, next_call, act, True, None, nonneg)
            elif isinstance(nxt, UNIT_SATURATING):
                point = ResponsePoint(name, next_name, next_call, act, False, "unit")
            elif isinstance(nxt, SYMMETRIC_SATURATING):
                point = ResponsePoint(name, next_name, next_call, act, False, "symmetric")
            break
        points[name] = point
    return points


def output_channels(module: nn.Module) -> int:
    """Output channels of a conv, output features of a linear layer."""
    value = getattr(module, "out_channels", None) or getattr(module, "out_features", None)
    if not isinstance(value, int):
        raise InvalidInputError(f"{type(module).__name__} is not a conv or linear layer.")
    return value


def at_response_points(
    model: nn.Module,
    points: Iterable[ResponsePoint],
    fn: Callable[[ResponsePoint, torch.Tensor], torch.Tensor | None],
) -> AbstractContextManager[None]:
    """Inside the block, ``fn(point, output)`` runs on every response point's output in this thread's
    forwards; a tensor it returns replaces that output (what-if zeroing)."""
    wanted = {(p.module, p.call): p for p in points}

    def at_point(module: str, call: int, output: Any) -> torch.Tensor | None:
        point = wanted.get((module, call))
        if point is None or not isinstance(output, torch.Tensor):
            return None
        return fn(point, output)

    return on_outputs(model, [module for module, _call in wanted], at_point)
