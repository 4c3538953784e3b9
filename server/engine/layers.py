"""The layer tree of a model: dotted names, types, kinds and output shapes from a real trace."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from server.engine.hooks import capture, module_hooks

CONV_TYPES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose2d)
LINEAR_TYPES: tuple[type[nn.Module], ...] = (nn.Linear,)
RECURRENT_TYPES: tuple[type[nn.Module], ...] = (nn.RNN, nn.LSTM, nn.GRU)  # units: the hidden state h_t
ACTIVATION_TYPES: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.PReLU,
    nn.ELU,
    nn.SELU,
    nn.CELU,
    nn.GELU,
    nn.SiLU,
    nn.Mish,
    nn.Sigmoid,
    nn.Tanh,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Hardtanh,
    nn.Softplus,
    nn.Softmax,
)
POOL_TYPES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d,
    nn.MaxPool2d,
    nn.AvgPool1d,
    nn.AvgPool2d,
    nn.AdaptiveAvgPool2d,
    nn.AdaptiveMaxPool2d,
)
NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.GroupNorm,
    nn.LayerNorm,
    nn.InstanceNorm2d,
    nn.LocalResponseNorm,
)


def module_type(module: nn.Module) -> str:
    """The module's class name; for a submodule of an unflattened ``torch.export`` program, the class it
    had before export (its ``original_type``, set by :mod:`server.zoo.exported`)."""
    return getattr(module, "original_type", None) or type(module).__name__


_KIND_BY_NAME = {
    t.__name__: kind
    for kind, types in (
        ("conv", CONV_TYPES),
        ("linear", LINEAR_TYPES),
        ("norm", NORM_TYPES),
        ("activation", ACTIVATION_TYPES),
        ("pool", POOL_TYPES),
    )
    for t in types
}


def layer_kind(module: nn.Module) -> str:
    """One of conv, linear, activation, pool, norm, block, other."""
    original = getattr(module, "original_type", None)
    if original is not None and original in _KIND_BY_NAME:
        return _KIND_BY_NAME[original]
    if isinstance(module, CONV_TYPES):
        return "conv"
    if isinstance(module, LINEAR_TYPES):
        return "linear"
    # Norm before activation: timm's BatchNormAct2d is a BatchNorm2d with a fused activation.
    if isinstance(module, NORM_TYPES):
        return "norm"
    if isinstance(module, ACTIVATION_TYPES):
        return "activation"
    if isinstance(module, POOL_TYPES) or "pool" in type(module).__name__.lower():
        return "pool"
    if any(True for _ in module.children()):
        return "block"
    return "other"


@dataclass(frozen=True)
class LayerInfo:
    name: str
    type: str
    kind: str
    output_shape: tuple[int, ...] | None  # without the batch dimension; None if not called in a forward
    channels: int | None
    parent: str
    depth: int
    num_params: int

    def to_dict(self) -> dict[str, Any]:
        d = self.__dict__.copy()
        d["output_shape"] = list(self.output_shape) if self.output_shape is not None else None
        return d


def trace_output_shapes(model: nn.Module, example: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Run one forward and record each named module's output shape (first call wins)."""
    named = [n for n, _m in model.named_modules() if n]
    with (
        capture(model, named, clone=False, reduce=lambda t: tuple(t.shape[1:])) as shapes,
        torch.inference_mode(),
    ):
        shapes.run(example)
    return dict(shapes)


def layer_tree(model: nn.Module, example: torch.Tensor) -> list[LayerInfo]:
    """Every named module with its type, kind and traced output shape, in definition order."""
    shapes = trace_output_shapes(model, example)
    out: list[LayerInfo] = []
    for name, module in model.named_modules():
        if not name:
            continue
        shape = shapes.get(name)
        channels = shape[0] if shape else None
        out.append(
            LayerInfo(
                name=name,
                type=module_type(module),
                kind=layer_kind(module),
                output_shape=shape,
                channels=channels,
                parent=name.rpartition(".")[0],
                depth=name.count("."),
                num_params=sum(p.numel() for p in module.parameters(recurse=True)),
            )
        )
    return out


def weighted_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The conv and linear layers, in definition order (also those of an unflattened export)."""
    return [
        (n, m)
        for n, m in model.named_modules()
        if n and layer_kind(m) in ("conv", "linear") and isinstance(getattr(m, "weight", None), torch.Tensor)
    ]


class ForwardFailedError(Exception):
    """A forward that raised, with the innermost layer that was running when it did."""

    def __init__(self, layer: str, layer_type: str, cause: BaseException) -> None:
        self.layer, self.layer_type, self.cause = layer, layer_type, cause
        where = f"in layer '{layer}' ({layer_type})" if layer else "before any layer ran"
        super().__init__(f"{where}: {type(cause).__name__}: {' '.join(str(cause).split())}")


def forward_locating_failure(model: nn.Module, x: torch.Tensor) -> Any:
    """``model(x)``; when it raises, :class:`ForwardFailedError` names the layer that was running."""
    names = {id(m): n for n, m in reversed(list(model.named_modules())) if n}
    running: list[nn.Module] = []

    def pre(module: nn.Module, _args: tuple[Any, ...]) -> None:
        running.append(module)

    def post(module: nn.Module, _args: tuple[Any, ...], _out: Any) -> None:
        running.pop()

    modules = [m for n, m in model.named_modules() if n]
    with module_hooks((m, pre, post) for m in modules):
        try:
            return model(x)
        except Exception as exc:
            inner = running[-1] if running else None
            raise ForwardFailedError(
                names.get(id(inner), "") if inner is not None else "",
                module_type(inner) if inner is not None else "",
                exc,
            ) from exc
