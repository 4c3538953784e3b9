"""What to explain (:class:`Target`) and its input-space map by deconvnet, guided backprop or plain
gradient (:func:`backprop_map`), one filter or the top-k filters of a layer at once.

The three methods share one backward; deconvnet and guided backprop run it inside
:func:`~server.engine.attribution.rectifiers.rewritten_rectifiers`, plain gradient as autograd has it.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from server.engine.attribution.rectifiers import REWRITE_MODES, rewritten_rectifiers
from server.engine.hooks import capture, first_tensor
from server.errors import InvalidInputError

Method = Literal["deconvnet", "guided_backprop", "gradient", "gradcam"]
METHODS: tuple[str, ...] = ("deconvnet", "guided_backprop", "gradient", "gradcam")


# --- targets ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What to explain: a filter (``channel``), a neuron (flat ``neuron`` index) of ``layer``, or a class logit.

    ``position`` applies to filters: ``max`` keeps the strongest spatial position only, ``all`` the
    whole feature map (the activations themselves are the signal sent back, as in Zeiler & Fergus).
    """

    layer: str | None = None
    channel: int | None = None
    neuron: int | None = None
    class_index: int | None = None
    position: Literal["max", "all"] = "max"

    @property
    def kind(self) -> str:
        if self.class_index is not None or self.layer is None:
            return "class"
        if self.neuron is not None:
            return "neuron"
        return "filter"


def layer_output(
    model: nn.Module, layer: str, x: torch.Tensor, stop: bool = True
) -> tuple[torch.Tensor, Any]:
    """Run ``model`` on ``x`` up to ``layer`` (to the end unless ``stop``); that layer's output, with its
    graph, and the model's output (None when stopped)."""
    with capture(model, [layer], keep_graph=True, stop_after=stop, strict=True) as outputs:
        result = outputs.run(x)
    return outputs[layer], result


def _check_channel(act: torch.Tensor, layer: str, channel: int) -> None:
    n = act.shape[1]
    if not 0 <= channel < n:
        raise InvalidInputError(
            f"Channel {channel} is out of range for layer '{layer}' with {n} channels (0..{n - 1})."
        )


def _seed(act: torch.Tensor, target: Target) -> tuple[torch.Tensor, tuple[int, ...] | None, float]:
    """The signal sent back from ``act`` (batch 1) for ``target``, the chosen position and the target's value."""
    assert target.layer is not None
    seed = torch.zeros_like(act)
    if target.neuron is not None:
        n = act[0].numel()
        if not 0 <= target.neuron < n:
            raise InvalidInputError(
                f"Neuron {target.neuron} is out of range for layer '{target.layer}' with {n} units (0..{n - 1})."
            )
        idx = tuple(int(i) for i in np.unravel_index(target.neuron, tuple(act.shape[1:])))
        seed[(0, *idx)] = 1.0
        return seed, idx, float(act.detach()[(0, *idx)])
    if target.channel is None:
        raise InvalidInputError("A layer target needs a channel or a neuron.")
    _check_channel(act, target.layer, target.channel)
    fmap = act[0, target.channel].detach()
    if target.position == "all":
        seed[0, target.channel] = fmap
        return seed, None, float(fmap.sum())
    if target.position != "max":
        raise InvalidInputError(f"Unknown position '{target.position}'; use 'max' or 'all'.")
    flat = int(torch.argmax(fmap.reshape(-1)))
    pos = tuple(int(i) for i in np.unravel_index(flat, tuple(fmap.shape))) if fmap.dim() else ()
    value = fmap.reshape(-1)[flat]
    seed[0, target.channel].view(-1)[flat] = value
    return seed, pos, float(value)


def class_seed(logits: torch.Tensor, class_index: int | None) -> tuple[torch.Tensor, int, float]:
    logits = logits.reshape(logits.shape[0], -1)
    n = logits.shape[1]
    c = int(logits[0].argmax()) if class_index is None else class_index
    if not 0 <= c < n:
        raise InvalidInputError(f"Class index {c} is out of range for a model with {n} classes (0..{n - 1}).")
    seed = torch.zeros_like(logits)
    seed[0, c] = 1.0
    return seed, c, float(logits.detach()[0, c])


# --- results and maps ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Attribution:
    """An input-space map (C, H, W) for deconvnet/guided/gradient, or an (H, W) heatmap for Grad-CAM."""

    method: str
    map: np.ndarray
    target: Target
    value: float  # the target's activation (or logit) on this input
    position: tuple[int, ...] | None = None  # where a ``max`` filter target was strongest
    class_index: int | None = None  # Grad-CAM's class, or a class target's
    layer_map: np.ndarray | None = None  # Grad-CAM at the layer's own resolution


def _rewrite_for(model: nn.Module, method: str) -> AbstractContextManager[None]:
    return rewritten_rectifiers(model, method) if method in REWRITE_MODES else nullcontext()  # type: ignore[arg-type]


def backprop_map(model: nn.Module, x: torch.Tensor, target: Target, method: str) -> Attribution:
    """Project ``target`` back to pixel space with ``method`` in deconvnet, guided_backprop, gradient."""
    if method not in ("deconvnet", "guided_backprop", "gradient"):
        raise InvalidInputError(f"Unknown method '{method}'; use one of {', '.join(METHODS)}.")
    if x.dim() != 4 or x.shape[0] != 1:
        raise InvalidInputError(f"Expected one image as a (1, C, H, W) tensor, got {tuple(x.shape)}.")
    inp = x.detach().clone().requires_grad_(True)
    rewrite = _rewrite_for(model, method)
    with torch.enable_grad(), rewrite:
        if target.kind == "class":
            logits = first_tensor(model(inp))
            if logits is None:
                raise InvalidInputError("The model returned no tensor to take a class score from.")
            seed, cls, value = class_seed(logits, target.class_index)
            out, pos = logits.reshape(seed.shape), None
        else:
            assert target.layer is not None
            out, _ = layer_output(model, target.layer, inp)
            seed, pos, value = _seed(out, target)
            cls = None
        (grad,) = torch.autograd.grad(out, inp, seed, allow_unused=True)
    gmap = np.zeros(tuple(x.shape[1:]), np.float32) if grad is None else grad[0].float().cpu().numpy()
    return Attribution(method, np.ascontiguousarray(gmap), target, value, pos, cls)


def filter_maps(
    model: nn.Module, x: torch.Tensor, layer: str, channels: list[int], method: str = "deconvnet"
) -> list[Attribution]:
    """Image i's map of filter ``channels[i]`` of ``layer`` at its strongest position (``Target(layer, channel,
    position="max")``, as :func:`backprop_map` gives it), for a batch in one forward and one backward: the
    images do not mix (eval mode), so each one's gradient is its own target's."""
    if method not in ("deconvnet", "guided_backprop", "gradient"):
        raise InvalidInputError(
            f"Unknown method '{method}'; use one of deconvnet, guided_backprop, gradient."
        )
    if x.dim() != 4 or x.shape[0] != len(channels):
        raise InvalidInputError(
            f"Give one image per filter as an (N, C, H, W) tensor: {len(channels)} filter(s), got {tuple(x.shape)}."
        )
    inp = x.detach().clone().requires_grad_(True)
    found: list[tuple[tuple[int, ...], float]] = []
    with torch.enable_grad(), _rewrite_for(model, method):
        out, _ = layer_output(model, layer, inp)
        seed = torch.zeros_like(out)
        for i, channel in enumerate(channels):
            _check_channel(out, layer, channel)
            fmap = out[i, channel].detach()
            flat = int(torch.argmax(fmap.reshape(-1)))
            pos = tuple(int(j) for j in np.unravel_index(flat, tuple(fmap.shape))) if fmap.dim() else ()
            value = fmap.reshape(-1)[flat]
            seed[i, channel].view(-1)[flat] = value
            found.append((pos, float(value)))
        (grad,) = torch.autograd.grad(out, inp, seed, allow_unused=True)
    maps = np.zeros(tuple(x.shape), np.float32) if grad is None else grad.float().cpu().numpy()
    return [
        Attribution(method, np.ascontiguousarray(maps[i]), Target(layer=layer, channel=c), value, pos)
        for i, (c, (pos, value)) in enumerate(zip(channels, found, strict=True))
    ]


def top_filters(model: nn.Module, x: torch.Tensor, layer: str, k: int) -> list[tuple[int, float]]:
    """The ``k`` channels of ``layer`` with the strongest single activation on ``x``, strongest first."""
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}.")
    with torch.no_grad():
        act, _ = layer_output(model, layer, x)
    if act.dim() < 2:
        raise InvalidInputError(f"Layer '{layer}' has no channels.")
    peak = act[0].reshape(act.shape[1], -1).amax(dim=1)
    k = min(k, peak.numel())
    top = torch.topk(peak, k)
    return [(int(i), float(v)) for v, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]


def backprop_top_filters(
    model: nn.Module, x: torch.Tensor, layer: str, k: int, method: str, position: str = "max"
) -> list[Attribution]:
    """Maps for the top-``k`` filters of ``layer`` in one batched forward and backward."""
    if method not in ("deconvnet", "guided_backprop", "gradient"):
        raise InvalidInputError(
            f"Unknown method '{method}' for top-k filters; use deconvnet, guided_backprop or gradient."
        )
    chosen = top_filters(model, x, layer, k)
    batch = x.detach().expand(len(chosen), *x.shape[1:]).clone(memory_format=torch.preserve_format)
    inp = batch.requires_grad_(True)
    rewrite = _rewrite_for(model, method)
    results: list[Attribution] = []
    with torch.enable_grad(), rewrite:
        out, _ = layer_output(model, layer, inp)
        seed = torch.zeros_like(out)
        info = []
        for row, (c, _v) in enumerate(chosen):
            t = Target(layer=layer, channel=c, position=position)  # type: ignore[arg-type]
            s, pos, value = _seed(out[row : row + 1], t)
            seed[row] = s[0]
            info.append((t, pos, value))
        (grad,) = torch.autograd.grad(out, inp, seed)
    for row, (t, pos, value) in enumerate(info):
        results.append(Attribution(method, grad[row].float().cpu().numpy().copy(), t, value, pos))
    return results
