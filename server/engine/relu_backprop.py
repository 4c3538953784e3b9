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
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
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

SELU_SCALE = 1.0507009873554804934193349852946

# Kinds whose slope is 0 wherever x <= 0: guided backprop is then their own backward after relu(grad),
# so a gradient hook on the output does it, with the model's own (in-place) kernels untouched.
ZERO_BELOW = ("relu", "relu6")


@dataclass(frozen=True)
class Rectifier:
    kind: str  # relu, relu6, leaky_relu, prelu, elu, celu, selu, silu, gelu, hardswish, mish, softplus
    fn: Callable[[torch.Tensor], torch.Tensor]  # the elementwise function, never in place


def guided_slope(kind: str, fn: Callable, x: torch.Tensor, gated: torch.Tensor) -> torch.Tensor:
    """f'(x) * gated, where gated is already zero wherever x <= 0 (closed forms; autograd for the rest)."""
    if kind in ("relu", "leaky_relu", "prelu", "elu", "celu"):  # slope 1 for x > 0
        return gated
    if kind == "relu6":
        return gated * (x < 6)
    if kind == "selu":
        return gated * SELU_SCALE
    if kind == "silu":
        s = torch.sigmoid(x)
        return gated * (s * (1 + x * (1 - s)))
    if kind == "hardswish":
        return gated * torch.where(x >= 3, torch.ones_like(x), (2 * x + 3) / 6)
    # torch-function modes are off so that this recomputation is never itself rewritten.
    with torch.enable_grad(), torch._C.DisableTorchFunction():
        xx = x.detach().requires_grad_(True)
        (vjp,) = torch.autograd.grad(fn(xx), xx, gated)
    return vjp


def rectified_grad(
    mode: str, grad: torch.Tensor, x: torch.Tensor | None, rect: Rectifier | None
) -> torch.Tensor:
    """The rewritten backward of rectifier ``rect`` at input ``x`` for incoming gradient ``grad``."""
    positive = grad.clamp(min=0)
    if mode == "deconvnet":
        return positive
    assert x is not None and rect is not None
    return guided_slope(rect.kind, rect.fn, x, positive * (x > 0))


def _positive_part(grad: torch.Tensor) -> torch.Tensor:
    return grad.clamp(min=0)


class _Rectified(torch.autograd.Function):
    """Identity on the activation's output; the rewritten rule on the way back to its input."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, out: torch.Tensor, mode: str, rect: Rectifier):
        ctx.mode, ctx.rect = mode, rect
        if mode == "guided_backprop":
            ctx.save_for_backward(x)
        return out.detach()  # same storage: no copy; the activation's own graph is left unused

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor):
        x = ctx.saved_tensors[0] if ctx.mode == "guided_backprop" else None
        return rectified_grad(ctx.mode, grad, x, ctx.rect), None, None, None


def _rewire(x: torch.Tensor, out: torch.Tensor, mode: str, rect: Rectifier) -> torch.Tensor | None:
    """The activation's output with the rule of ``mode`` on its backward; None to keep ``out`` as it is."""
    if mode == "guided_backprop" and rect.kind in ZERO_BELOW:
        if out.requires_grad:
            out.register_hook(_positive_part)
        return None
    return _Rectified.apply(x, out, mode, rect)


# --- which activations are rectifiers, and their functional form -----------------------------------


def module_rectifier(m: nn.Module) -> Rectifier | None:
    """The rectifier an activation module computes; None if it is not one (sigmoid, tanh: gates)."""
    if isinstance(m, nn.ReLU):
        return Rectifier("relu", F.relu)
    if isinstance(m, nn.ReLU6):
        return Rectifier("relu6", F.relu6)
    if isinstance(m, nn.LeakyReLU):
        return Rectifier("leaky_relu", functools.partial(F.leaky_relu, negative_slope=m.negative_slope))
    if isinstance(m, nn.PReLU):
        weight = m.weight.detach()
        return Rectifier("prelu", lambda x: F.prelu(x, weight))
    if isinstance(m, nn.ELU):
        return Rectifier("elu", functools.partial(F.elu, alpha=m.alpha))
    if isinstance(m, nn.CELU):
        return Rectifier("celu", functools.partial(F.celu, alpha=m.alpha))
    if isinstance(m, nn.SELU):
        return Rectifier("selu", F.selu)
    if isinstance(m, nn.SiLU):
        return Rectifier("silu", F.silu)
    if isinstance(m, nn.GELU):
        return Rectifier("gelu", functools.partial(F.gelu, approximate=m.approximate))
    if isinstance(m, nn.Hardswish):
        return Rectifier("hardswish", F.hardswish)
    if isinstance(m, nn.Mish):
        return Rectifier("mish", F.mish)
    if isinstance(m, nn.Softplus):
        return Rectifier("softplus", functools.partial(F.softplus, beta=m.beta, threshold=m.threshold))
    # timm's own activation classes (used when the torch ones are not chosen)
    timm_kinds = {
        "Swish": Rectifier("silu", F.silu),
        "HardSwish": Rectifier("hardswish", F.hardswish),
        "Mish": Rectifier("mish", F.mish),
        "GELU": Rectifier("gelu", F.gelu),
    }
    return timm_kinds.get(type(m).__name__)


def _without_inplace(fn: Callable) -> Callable[..., torch.Tensor]:
    def call(x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        kwargs.pop("inplace", None)
        if args and isinstance(args[-1], bool):
            args = args[:-1]
        return fn(x, *args, **kwargs)

    return call


# Functional activations intercepted by the TorchFunctionMode: func -> (kind, non-inplace fn(x, *args, **kw)).
_FUNCTIONAL: dict[Callable, tuple[str, Callable[..., torch.Tensor]]] = {
    torch.relu: ("relu", F.relu),
    torch.relu_: ("relu", F.relu),
    torch.Tensor.relu: ("relu", F.relu),
    torch.Tensor.relu_: ("relu", F.relu),
    F.relu: ("relu", _without_inplace(F.relu)),
    F.relu_: ("relu", F.relu),
    F.relu6: ("relu6", _without_inplace(F.relu6)),
    F.leaky_relu: ("leaky_relu", _without_inplace(F.leaky_relu)),
    F.leaky_relu_: ("leaky_relu", F.leaky_relu),
    F.elu: ("elu", _without_inplace(F.elu)),
    F.celu: ("celu", _without_inplace(F.celu)),
    F.selu: ("selu", _without_inplace(F.selu)),
    F.silu: ("silu", _without_inplace(F.silu)),
    F.gelu: ("gelu", F.gelu),
    F.hardswish: ("hardswish", _without_inplace(F.hardswish)),
    F.mish: ("mish", _without_inplace(F.mish)),
    F.softplus: ("softplus", F.softplus),
}


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
        entry = _FUNCTIONAL.get(func)
        if entry is None or self.state.depth > 0 or not args or not isinstance(args[0], torch.Tensor):
            return func(*args, **kwargs)
        x = args[0]
        if not (torch.is_grad_enabled() and x.requires_grad):
            return func(*args, **kwargs)
        kind, fn = entry
        rect = Rectifier(kind, _bind(fn, args[1:], kwargs))
        if self.state.mode == "guided_backprop" and kind in ZERO_BELOW:
            out = func(*args, **kwargs)  # the model's own call, in place or not
        else:
            out = rect.fn(x)  # in place variants out of place: the rule needs the intact input
        rewired = _rewire(x, out, self.state.mode, rect)
        return out if rewired is None else rewired


def _bind(fn: Callable, args: tuple, kwargs: dict) -> Callable[[torch.Tensor], torch.Tensor]:
    if not args and not kwargs:
        return fn
    return lambda x: fn(x, *args, **kwargs)


def rectifier_modules(model: nn.Module) -> list[tuple[str, nn.Module, Rectifier]]:
    """Every activation module of ``model`` that gets a rewritten backward, with its rectifier."""
    out = []
    for name, m in model.named_modules():
        rect = module_rectifier(m)
        if rect is not None:
            out.append((name, m, rect))
    return out


@contextmanager
def rewritten_rectifiers(model: nn.Module, mode: Mode) -> Iterator[None]:
    """Inside the block, backward passes through ``model``'s rectifiers follow ``mode``'s rule.

    Hooks, the function mode and any ``inplace`` flag switched off are restored on exit, also when
    the forward or backward raises. Hold the model's lock around this block when the model is shared.
    """
    if mode not in REWRITE_MODES:
        raise InvalidInputError(f"Unknown rectifier mode '{mode}'; use one of {', '.join(REWRITE_MODES)}.")
    state = _RewriteState(mode)
    saved_inputs: dict[int, list[torch.Tensor]] = {}
    modules = rectifier_modules(model)
    keep_native = {id(m) for _n, m, r in modules if mode == "guided_backprop" and r.kind in ZERO_BELOW}
    inplace_off = [m for _n, m, _r in modules if getattr(m, "inplace", False) and id(m) not in keep_native]

    def pre_hook(m: nn.Module, args: tuple) -> None:
        state.local.depth = state.depth + 1  # functional calls inside the module are the module's own
        if args and isinstance(args[0], torch.Tensor):
            saved_inputs.setdefault(id(m), []).append(args[0])

    def make_hook(rect: Rectifier) -> Callable:
        def hook(m: nn.Module, _args: tuple, out: Any) -> Any:
            state.local.depth = max(0, state.depth - 1)
            stack = saved_inputs.get(id(m))
            x = stack.pop() if stack else None
            if x is None or not isinstance(out, torch.Tensor):
                return None
            if not (torch.is_grad_enabled() and x.requires_grad):
                return None
            return _rewire(x, out, mode, rect)

        return hook

    def handles():
        for _name, m, rect in modules:
            yield m.register_forward_pre_hook(pre_hook)
            yield m.register_forward_hook(make_hook(rect))

    for m in inplace_off:  # the rule needs the rectifier's input intact
        setattr(m, "inplace", False)  # noqa: B010
    try:
        with hooked(handles), _FunctionalRectifiers(state):
            yield
    finally:
        for m in inplace_off:
            setattr(m, "inplace", True)  # noqa: B010
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
            seed, cls, value = _class_seed(logits, target.class_index)
            out, pos = logits.reshape(seed.shape), None
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
    rewrite = _rewrite_for(model, method)
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
