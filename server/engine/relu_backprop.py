"""Deconvnet, guided backprop, plain gradient and Grad-CAM for any PyTorch CNN.

One mechanism serves deconvnet and guided backprop: every rectifier's backward pass is rewritten
while the model runs inside :func:`rewritten_rectifiers`. Activation *modules* are rewritten with a
forward pre-hook and a forward hook; *functional* activations (``torch.relu``, ``F.relu6``,
``F.silu`` ...) are intercepted with a ``TorchFunctionMode``. Both are removed on exit, whatever
happens. Max-pooling needs nothing: autograd routes the signal through its switches.

The rule per activation kind is documented in docs/ACTIVATION_RULES.md:

* deconvnet:       grad_in = relu(grad_out)                              (ignores the forward input)
* guided backprop: grad_in = f'(x) * relu(grad_out) * [x > 0]            (x: the rectifier's input)
* gradient:        grad_in = f'(x) * grad_out                            (plain autograd, no rewrite)

For ReLU, f'(x)[x > 0] = [x > 0], which is Springenberg et al.'s guided backprop exactly.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from server.engine.hooks import first_tensor, get_module, hooked
from server.errors import InvalidInputError

Mode = Literal["deconvnet", "guided_backprop"]
Method = Literal["deconvnet", "guided_backprop", "gradient", "gradcam"]
METHODS: tuple[str, ...] = ("deconvnet", "guided_backprop", "gradient", "gradcam")
REWRITE_MODES: tuple[str, ...] = ("deconvnet", "guided_backprop")


# --- the rule ---------------------------------------------------------------------------------------


def rectified_grad(
    mode: str, grad: torch.Tensor, x: torch.Tensor | None, fn: Callable | None
) -> torch.Tensor:
    """The rewritten backward of a rectifier ``fn`` at input ``x`` for incoming gradient ``grad``."""
    positive = grad.clamp(min=0)
    if mode == "deconvnet":
        return positive
    assert x is not None and fn is not None
    gated = positive * (x > 0)
    if fn is F.relu:
        return gated
    # f'(x) * gated, by autograd of the activation itself (exact for every elementwise rectifier);
    # torch-function modes are off so that this recomputation is never itself rewritten.
    with torch.enable_grad(), torch._C.DisableTorchFunction():
        xx = x.detach().requires_grad_(True)
        (vjp,) = torch.autograd.grad(fn(xx), xx, gated)
    return vjp


class _Rectified(torch.autograd.Function):
    """Identity on the activation's output; the rewritten rule on the way back to its input."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, out: torch.Tensor, mode: str, fn: Callable):
        ctx.mode, ctx.fn = mode, fn
        if mode == "guided_backprop":
            ctx.save_for_backward(x)
        return out.detach().clone(memory_format=torch.preserve_format)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        x = ctx.saved_tensors[0] if ctx.mode == "guided_backprop" else None
        return rectified_grad(ctx.mode, grad, x, ctx.fn), None, None, None, None


# --- which activations are rectifiers, and their functional form -----------------------------------


def _module_fn(m: nn.Module) -> Callable[[torch.Tensor], torch.Tensor] | None:
    """The non-inplace elementwise function a rectifier module computes; None if it is not one."""
    if isinstance(m, nn.ReLU):
        return F.relu
    if isinstance(m, nn.ReLU6):
        return F.relu6
    if isinstance(m, nn.LeakyReLU):
        return functools.partial(F.leaky_relu, negative_slope=m.negative_slope)
    if isinstance(m, nn.PReLU):
        weight = m.weight.detach()
        return lambda x: F.prelu(x, weight)
    if isinstance(m, nn.ELU):
        return functools.partial(F.elu, alpha=m.alpha)
    if isinstance(m, nn.CELU):
        return functools.partial(F.celu, alpha=m.alpha)
    if isinstance(m, nn.SELU):
        return F.selu
    if isinstance(m, nn.SiLU):
        return F.silu
    if isinstance(m, nn.GELU):
        return functools.partial(F.gelu, approximate=m.approximate)
    if isinstance(m, nn.Hardswish):
        return F.hardswish
    if isinstance(m, nn.Mish):
        return F.mish
    if isinstance(m, nn.Softplus):
        return functools.partial(F.softplus, beta=m.beta, threshold=m.threshold)
    # timm's own activation classes (used when the torch ones are not chosen)
    name = type(m).__name__
    timm_fns = {"Swish": F.silu, "HardSwish": F.hardswish, "Mish": F.mish, "GELU": F.gelu, "ReLU6": F.relu6}
    return timm_fns.get(name)


# Functional activations intercepted by the TorchFunctionMode: func -> (non-inplace fn of (x, *args, **kw)).
def _functional_table() -> dict[Callable, Callable[..., torch.Tensor]]:
    def drop_inplace(fn: Callable) -> Callable[..., torch.Tensor]:
        def call(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
            kwargs.pop("inplace", None)
            if args and isinstance(args[-1], bool) and fn is not F.leaky_relu:
                args = args[:-1]
            return fn(x, *args, **kwargs)

        return call

    table: dict[Callable, Callable[..., torch.Tensor]] = {
        torch.relu: F.relu,
        torch.relu_: F.relu,
        torch.Tensor.relu: F.relu,
        torch.Tensor.relu_: F.relu,
        F.relu: drop_inplace(F.relu),
        F.relu_: F.relu,
        F.relu6: drop_inplace(F.relu6),
        F.silu: drop_inplace(F.silu),
        F.hardswish: drop_inplace(F.hardswish),
        F.mish: drop_inplace(F.mish),
        F.gelu: F.gelu,
        F.elu: drop_inplace(F.elu),
        F.selu: drop_inplace(F.selu),
        F.celu: drop_inplace(F.celu),
        F.softplus: F.softplus,
    }

    def leaky(x: torch.Tensor, negative_slope: float = 0.01, inplace: bool = False) -> torch.Tensor:
        return F.leaky_relu(x, negative_slope)

    table[F.leaky_relu] = leaky
    table[F.leaky_relu_] = leaky
    return table


_FUNCTIONAL: dict[Callable, Callable[..., torch.Tensor]] = _functional_table()


@dataclass
class _RewriteState:
    mode: str
    local: threading.local = field(default_factory=threading.local)

    @property
    def depth(self) -> int:
        return getattr(self.local, "depth", 0)


class _FunctionalRectifiers(TorchFunctionMode):
    """Rewrites functional activations called outside the hooked activation modules."""

    def __init__(self, state: _RewriteState) -> None:
        super().__init__()
        self.state = state

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        fn = _FUNCTIONAL.get(func)
        if fn is None or self.state.depth > 0 or not args or not isinstance(args[0], torch.Tensor):
            return func(*args, **kwargs)
        x = args[0]
        if not (torch.is_grad_enabled() and x.requires_grad):
            return func(*args, **kwargs)
        # In-place variants are computed out of place: the rewritten backward needs the intact input.
        out = fn(x, *args[1:], **kwargs)
        return _Rectified.apply(x, out, self.state.mode, _bind(fn, args[1:], kwargs))


def _bind(fn: Callable, args: tuple, kwargs: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    if not args and not kwargs:
        return fn
    return lambda x: fn(x, *args, **kwargs)


def rectifier_modules(model: nn.Module) -> list[tuple[str, nn.Module, Callable]]:
    """Every activation module of ``model`` that gets a rewritten backward, with its function."""
    out = []
    for name, m in model.named_modules():
        fn = _module_fn(m)
        if fn is not None:
            out.append((name, m, fn))
    return out


@contextmanager
def rewritten_rectifiers(model: nn.Module, mode: Mode) -> Iterator[None]:
    """Inside the block, backward passes through ``model``'s rectifiers follow ``mode``'s rule.

    Hooks and the function mode are removed on exit, also when the forward or backward raises.
    Hold the model's lock around this block when the model is shared.
    """
    if mode not in REWRITE_MODES:
        raise InvalidInputError(f"Unknown rectifier mode '{mode}'; use one of {', '.join(REWRITE_MODES)}.")
    state = _RewriteState(mode)
    saved_inputs: dict[int, list[torch.Tensor]] = {}

    def pre_hook(m: nn.Module, args: tuple) -> tuple | None:
        state.local.depth = state.depth + 1  # functional calls inside the module are the module's own
        x = args[0] if args else None
        if not isinstance(x, torch.Tensor):
            return None
        saved_inputs.setdefault(id(m), []).append(x)
        if getattr(m, "inplace", False):
            return (x.clone(memory_format=torch.preserve_format), *args[1:])  # keep the input intact
        return None

    def make_hook(fn: Callable) -> Callable:
        def hook(m: nn.Module, _args: tuple, out: Any) -> Any:
            state.local.depth = max(0, state.depth - 1)
            stack = saved_inputs.get(id(m))
            x = stack.pop() if stack else None
            if x is None or not isinstance(out, torch.Tensor):
                return None
            if not (torch.is_grad_enabled() and x.requires_grad):
                return None
            return _Rectified.apply(x, out, mode, fn)

        return hook

    modules = rectifier_modules(model)

    def handles():
        for _name, m, fn in modules:
            yield m.register_forward_pre_hook(pre_hook)
            yield m.register_forward_hook(make_hook(fn))

    with hooked(handles), _FunctionalRectifiers(state):
        try:
            yield
        finally:
            saved_inputs.clear()
            state.local.depth = 0


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


class _StopForward(Exception):
    """Raised by a hook to end a forward once the target layer has run."""


def _layer_output(
    model: nn.Module, layer: str, x: torch.Tensor, stop: bool = True
) -> tuple[torch.Tensor, Any]:
    """Run ``model`` on ``x`` up to ``layer``; return that layer's output (with graph) and the model output."""
    module = get_module(model, layer)
    captured: dict[str, torch.Tensor] = {}

    def hook(_m: nn.Module, _i: Any, out: Any) -> Any:
        if "out" in captured:
            return None
        t = first_tensor(out)
        if t is None:
            raise InvalidInputError(f"Layer '{layer}' produced no tensor output.")
        captured["out"] = t
        if stop:
            raise _StopForward
        if isinstance(out, torch.Tensor):
            return out.clone(memory_format=torch.preserve_format)  # in-place ops downstream must not touch it
        return None

    result = None
    with hooked(lambda: [module.register_forward_hook(hook)]), suppress(_StopForward):
        result = model(x)
    if "out" not in captured:
        raise InvalidInputError(f"Layer '{layer}' is not called in the model's forward pass.")
    return captured["out"], result


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
        idx = np.unravel_index(target.neuron, tuple(act.shape[1:]))
        seed[(0, *idx)] = 1.0
        return seed, tuple(int(i) for i in idx), float(act.detach()[(0, *idx)])
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


def _class_seed(logits: torch.Tensor, class_index: int | None) -> tuple[torch.Tensor, int, float]:
    logits = logits.reshape(logits.shape[0], -1)
    n = logits.shape[1]
    c = int(logits[0].argmax()) if class_index is None else class_index
    if not 0 <= c < n:
        raise InvalidInputError(f"Class index {c} is out of range for a model with {n} classes (0..{n - 1}).")
    seed = torch.zeros_like(logits)
    seed[0, c] = 1.0
    return seed, c, float(logits.detach()[0, c])


# --- results and entry points -----------------------------------------------------------------------


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


def backprop_map(model: nn.Module, x: torch.Tensor, target: Target, method: str) -> Attribution:
    """Project ``target`` back to pixel space with ``method`` in deconvnet, guided_backprop, gradient."""
    if method not in ("deconvnet", "guided_backprop", "gradient"):
        raise InvalidInputError(f"Unknown method '{method}'; use one of {', '.join(METHODS)}.")
    if x.dim() != 4 or x.shape[0] != 1:
        raise InvalidInputError(f"Expected one image as a (1, C, H, W) tensor, got {tuple(x.shape)}.")
    inp = x.detach().clone().requires_grad_(True)
    rewrite = rewritten_rectifiers(model, method) if method in REWRITE_MODES else _nothing()
    with torch.enable_grad(), rewrite:
        if target.kind == "class":
            logits = model(inp)
            seed, cls, value = _class_seed(first_tensor(logits), target.class_index)
            out, pos = first_tensor(logits).reshape(seed.shape), None
        else:
            assert target.layer is not None
            out, _ = _layer_output(model, target.layer, inp)
            seed, pos, value = _seed(out, target)
            cls = None
        (grad,) = torch.autograd.grad(out, inp, seed, allow_unused=True)
    gmap = np.zeros(tuple(x.shape[1:]), np.float32) if grad is None else grad[0].float().cpu().numpy()
    return Attribution(method, np.ascontiguousarray(gmap), target, value, pos, cls)


def top_filters(model: nn.Module, x: torch.Tensor, layer: str, k: int) -> list[tuple[int, float]]:
    """The ``k`` channels of ``layer`` with the strongest single activation on ``x``, strongest first."""
    if k < 1:
        raise InvalidInputError(f"k must be at least 1, got {k}.")
    with torch.no_grad():
        act, _ = _layer_output(model, layer, x)
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
    rewrite = rewritten_rectifiers(model, method) if method in REWRITE_MODES else _nothing()
    results: list[Attribution] = []
    with torch.enable_grad(), rewrite:
        out, _ = _layer_output(model, layer, inp)
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


def gradcam(model: nn.Module, x: torch.Tensor, layer: str, class_index: int | None = None) -> Attribution:
    """Grad-CAM (Selvaraju et al.): relu(sum_k mean(dy_c/dA_k) A_k) at ``layer``, upsampled to the input."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise InvalidInputError(f"Expected one image as a (1, C, H, W) tensor, got {tuple(x.shape)}.")
    inp = x.detach().clone().requires_grad_(True)  # so that the layer's output is on the graph
    with torch.enable_grad():
        act, logits = _layer_output(model, layer, inp, stop=False)
        if act.dim() != 4:
            raise InvalidInputError(
                f"Grad-CAM needs a layer with a spatial (C, H, W) output; '{layer}' gives {tuple(act.shape[1:])}."
            )
        out = first_tensor(logits)
        if out is None:
            raise InvalidInputError("The model returned no tensor.")
        seed, cls, value = _class_seed(out, class_index)
        (grad,) = torch.autograd.grad(out.reshape(seed.shape), act, seed, allow_unused=True)
    if grad is None:
        raise InvalidInputError(f"The class score does not depend on layer '{layer}'.")
    weights = grad[0].mean(dim=(1, 2), keepdim=True)
    cam = torch.relu((weights * act[0].detach()).sum(0))
    up = F.interpolate(cam[None, None], size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)[0, 0]
    return Attribution(
        "gradcam",
        up.cpu().numpy().astype(np.float32),
        Target(layer=layer, class_index=cls),
        value,
        None,
        cls,
        cam.cpu().numpy().astype(np.float32),
    )


def attribute(model: nn.Module, x: torch.Tensor, target: Target, method: str) -> Attribution:
    """One entry point for every method; Grad-CAM explains ``target.class_index`` at ``target.layer``."""
    if method == "gradcam":
        if target.layer is None:
            raise InvalidInputError("Grad-CAM needs a layer.")
        return gradcam(model, x, target.layer, target.class_index)
    return backprop_map(model, x, target, method)


@contextmanager
def _nothing() -> Iterator[None]:
    yield
