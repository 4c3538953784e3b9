"""Deconvnet and guided backprop as one mechanism: every rectifier's backward pass is rewritten
while the model runs inside :func:`rewritten_rectifiers`.

Activation *modules* are rewritten by a forward pre-hook and a forward hook installed through
:func:`server.engine.hooks.module_hooks` (so only this thread's forwards are rewritten); *functional*
activations (``torch.relu``, ``F.relu6``, ``F.silu`` ...) are intercepted with a ``TorchFunctionMode``
(a per-thread stack). Both are removed on exit, whatever happens. Max-pooling needs nothing:
autograd routes the signal through its switches.

The rule per activation kind is documented in docs/ACTIVATION_RULES.md:

* deconvnet:       grad_in = relu(grad_out)                              (ignores the forward input)
* guided backprop: grad_in = f'(x) * relu(grad_out) * [x > 0]            (x: the rectifier's input)

For ReLU, f'(x)[x > 0] = [x > 0], which is Springenberg et al.'s guided backprop exactly.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from server.engine.hooks import PostHook, module_hooks
from server.errors import InvalidInputError

Mode = Literal["deconvnet", "guided_backprop"]
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


# Each activation module type and how its functional form is read off the module (its parameters).
_MODULE_RECTIFIERS: tuple[tuple[type[nn.Module], Callable[[Any], Rectifier]], ...] = (
    (nn.ReLU, lambda m: Rectifier("relu", F.relu)),
    (nn.ReLU6, lambda m: Rectifier("relu6", F.relu6)),
    (
        nn.LeakyReLU,
        lambda m: Rectifier("leaky_relu", functools.partial(F.leaky_relu, negative_slope=m.negative_slope)),
    ),
    (nn.PReLU, lambda m: Rectifier("prelu", functools.partial(_prelu, weight=m.weight.detach()))),
    (nn.ELU, lambda m: Rectifier("elu", functools.partial(F.elu, alpha=m.alpha))),
    (nn.CELU, lambda m: Rectifier("celu", functools.partial(F.celu, alpha=m.alpha))),
    (nn.SELU, lambda m: Rectifier("selu", F.selu)),
    (nn.SiLU, lambda m: Rectifier("silu", F.silu)),
    (nn.GELU, lambda m: Rectifier("gelu", functools.partial(F.gelu, approximate=m.approximate))),
    (nn.Hardswish, lambda m: Rectifier("hardswish", F.hardswish)),
    (nn.Mish, lambda m: Rectifier("mish", F.mish)),
    (
        nn.Softplus,
        lambda m: Rectifier("softplus", functools.partial(F.softplus, beta=m.beta, threshold=m.threshold)),
    ),
)
# timm's own activation classes (used when the torch ones are not chosen), by class name.
_TIMM_RECTIFIERS = {
    "Swish": Rectifier("silu", F.silu),
    "HardSwish": Rectifier("hardswish", F.hardswish),
    "Mish": Rectifier("mish", F.mish),
    "GELU": Rectifier("gelu", F.gelu),
}


def _prelu(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.prelu(x, weight)


def module_rectifier(m: nn.Module) -> Rectifier | None:
    """The rectifier an activation module computes; None if it is not one (sigmoid, tanh: gates)."""
    for kind, make in _MODULE_RECTIFIERS:
        if isinstance(m, kind):
            return make(m)
    return _TIMM_RECTIFIERS.get(type(m).__name__)


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


# The one piece of module state the rewriting changes: `inplace` switched off while any thread rewrites
# (a plain forward of another thread computes the same values either way, so it needs no lock).
# Counted per module, so that the last rewriting thread to leave switches it back on.
_inplace_lock = threading.Lock()
_inplace_users: dict[int, tuple[nn.Module, int]] = {}


def _inplace_off(modules: list[nn.Module]) -> list[nn.Module]:
    taken = []
    with _inplace_lock:
        for m in modules:
            user = _inplace_users.get(id(m))
            if user is not None:
                _inplace_users[id(m)] = (m, user[1] + 1)
            elif getattr(m, "inplace", False):
                _inplace_users[id(m)] = (m, 1)
                setattr(m, "inplace", False)  # noqa: B010
            else:
                continue
            taken.append(m)
    return taken


def _inplace_restore(modules: list[nn.Module]) -> None:
    with _inplace_lock:
        for m in modules:
            _m, n = _inplace_users[id(m)]
            if n > 1:
                _inplace_users[id(m)] = (m, n - 1)
            else:
                del _inplace_users[id(m)]
                setattr(m, "inplace", True)  # noqa: B010


@contextmanager
def rewritten_rectifiers(model: nn.Module, mode: Mode) -> Iterator[None]:
    """Inside the block, backward passes through ``model``'s rectifiers follow ``mode``'s rule.

    Only this thread's forwards are rewritten: hooks and the function mode are per thread, and the
    ``inplace`` flags switched off are counted per module, so concurrent rewrites and plain forwards of
    a shared model need no lock. All are restored on exit, also when the forward or backward raises.
    """
    if mode not in REWRITE_MODES:
        raise InvalidInputError(f"Unknown rectifier mode '{mode}'; use one of {', '.join(REWRITE_MODES)}.")
    state = _RewriteState(mode)
    saved_inputs: dict[int, list[torch.Tensor]] = {}
    modules = rectifier_modules(model)
    keep_native = {id(m) for _n, m, r in modules if mode == "guided_backprop" and r.kind in ZERO_BELOW}
    needs_copy = [m for _n, m, _r in modules if id(m) not in keep_native]

    def pre_hook(m: nn.Module, args: tuple[Any, ...]) -> None:
        state.local.depth = state.depth + 1  # functional calls inside the module are the module's own
        if args and isinstance(args[0], torch.Tensor):
            saved_inputs.setdefault(id(m), []).append(args[0])

    def make_hook(rect: Rectifier) -> PostHook:
        def hook(m: nn.Module, _args: tuple[Any, ...], out: Any) -> Any:
            state.local.depth = max(0, state.depth - 1)
            stack = saved_inputs.get(id(m))
            x = stack.pop() if stack else None
            if x is None or not isinstance(out, torch.Tensor):
                return None
            if not (torch.is_grad_enabled() and x.requires_grad):
                return None
            return _rewire(x, out, mode, rect)

        return hook

    hooks = [(m, pre_hook, make_hook(rect)) for _name, m, rect in modules]
    inplace_off = _inplace_off(needs_copy)  # the rule needs the rectifier's input intact
    try:
        with module_hooks(hooks), _FunctionalRectifiers(state):
            yield
    finally:
        _inplace_restore(inplace_off)
        saved_inputs.clear()
        state.local.depth = 0
