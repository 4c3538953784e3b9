"""Where each layer's units are judged.

A layer's *response* is the output of the first activation that follows it in execution order
(skipping norms, dropout and identities), so that a conv followed by BatchNorm + ReLU6 is judged after
the ReLU6. A layer with no activation after it (logits, linear projections) is judged on its own
output and gets no dead check.

A recurrent layer (``nn.RNN``, ``nn.LSTM``, ``nn.GRU``) is judged on its hidden states h_t: one unit per
hidden unit, the time steps as its positions (``(N, hidden, T)``, like a Conv1d's channels over length).
h_t is bounded by tanh (RNN, LSTM's o * tanh(c), GRU's blend of tanh candidates), so a unit is checked
for saturation at +-1 and for being near-constant; there is no dead check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from server.engine.hooks import first_tensor, on_outputs
from server.engine.layers import CONV_TYPES, LINEAR_TYPES, NORM_TYPES, RECURRENT_TYPES
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
AUDITED_TYPES: tuple[type[nn.Module], ...] = (*CONV_TYPES, *LINEAR_TYPES, *RECURRENT_TYPES)


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
        if n and (not any(True for _ in m.children()) or isinstance(m, AUDITED_TYPES))
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
    """For each conv, linear and recurrent layer called in a forward of ``example``, where its units are
    judged."""
    modules = dict(model.named_modules())
    calls = _leaf_calls(model, example)
    points: dict[str, ResponsePoint] = {}
    for i, (name, call, shape) in enumerate(calls):
        module = modules[name]
        if not isinstance(module, AUDITED_TYPES) or name in points:
            continue
        if isinstance(module, RECURRENT_TYPES):
            points[name] = ResponsePoint(
                name, name, call, f"{type(module).__name__} hidden state", False, "symmetric"
            )
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
    """Output channels of a conv, output features of a linear layer, hidden units of a recurrent one."""
    if isinstance(module, RECURRENT_TYPES):
        return int(module.hidden_size) * (2 if module.bidirectional else 1)
    value = getattr(module, "out_channels", None) or getattr(module, "out_features", None)
    if not isinstance(value, int):
        raise InvalidInputError(f"{type(module).__name__} is not a conv, linear or recurrent layer.")
    return value


def _units_view(module: nn.Module, output: Any) -> torch.Tensor | None:
    """A recurrent layer's hidden states as (N, units, T); the output itself for any other layer."""
    if not isinstance(module, RECURRENT_TYPES):
        return output if isinstance(output, torch.Tensor) else None
    seq = output[0] if isinstance(output, tuple) else output
    if not isinstance(seq, torch.Tensor) or seq.dim() != 3:  # packed sequences are not audited
        return None
    return seq.transpose(1, 2) if module.batch_first else seq.permute(1, 2, 0)


def _from_units_view(module: nn.Module, output: Any, units: torch.Tensor) -> Any:
    """``output`` with its hidden states replaced by ``units`` (N, units, T) (what-if zeroing)."""
    if not isinstance(module, RECURRENT_TYPES):
        return units
    seq = units.transpose(1, 2) if module.batch_first else units.permute(2, 0, 1)
    return (seq, *output[1:]) if isinstance(output, tuple) else seq


def at_response_points(
    model: nn.Module,
    points: Iterable[ResponsePoint],
    fn: Callable[[ResponsePoint, torch.Tensor], torch.Tensor | None],
) -> AbstractContextManager[None]:
    """Inside the block, ``fn(point, output)`` runs on every response point's output in this thread's
    forwards; a tensor it returns replaces that output (what-if zeroing)."""
    wanted = {(p.module, p.call): p for p in points}
    modules = dict(model.named_modules())

    def at_point(module: str, call: int, output: Any) -> Any:
        point = wanted.get((module, call))
        units = None if point is None else _units_view(modules[module], output)
        if point is None or units is None:
            return None
        replaced = fn(point, units)
        return None if replaced is None else _from_units_view(modules[module], output, replaced)

    return on_outputs(model, [module for module, _call in wanted], at_point)
