"""The one hook mechanism of ConvLens: thread-scoped forward hooks that are always removed.

Three layers, each built on the one below:

- :func:`module_hooks` - forward pre- and post-hooks on given modules (the rectifier rewriting of
  attribution uses it directly);
- :func:`on_outputs` - ``fn(layer, call, output)`` after each call of the named layers, with the call's
  index within the current forward (the audit's response points, what-if zeroing);
- :func:`capture` - the outputs of the named layers, first call of each module per forward, maybe
  kept on the autograd graph, maybe ending the forward early with :class:`StopForward`.

Every hook acts only on forwards run by the thread that installed it: a concurrent forward on the
same shared model is neither recorded, stopped nor rewritten. Every hook is removed on exit, also
when the forward raises. Modules are addressed by their dotted ``named_modules()`` names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from server.errors import InvalidInputError, NotFoundError

PreHook = Callable[[nn.Module, tuple[Any, ...]], Any]  # PyTorch's: a non-None result replaces the input
PostHook = Callable[[nn.Module, tuple[Any, ...], Any], Any]  # a non-None result replaces the output
LayerFn = Callable[[str, int, Any], Any]  # (layer name, call index in this forward, output) -> replacement


class StopForward(Exception):
    """Ends a forward early: every output it was run for has been produced (see :meth:`Capture.run`)."""


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` in ``model.named_modules()``; 404-style error naming close matches."""
    return modules_named(model, [name])[0]


def modules_named(model: nn.Module, names: Iterable[str]) -> list[nn.Module]:
    """The submodules called ``names``, in order; the first unknown name raises as :func:`get_module`."""
    modules = dict(model.named_modules())
    out = []
    for name in names:
        if name not in modules or name == "":
            raise NotFoundError.with_suggestions("layer", name, [n for n in modules if n])
        out.append(modules[name])
    return out


def first_tensor(output: Any) -> torch.Tensor | None:
    """The tensor a module produced (the first one, for modules returning tuples or lists)."""
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            t = first_tensor(item)
            if t is not None:
                return t
    if isinstance(output, dict):
        for item in output.values():
            t = first_tensor(item)
            if t is not None:
                return t
    return None


@contextmanager
def hooked(handles_factory: Callable[[], Iterable[torch.utils.hooks.RemovableHandle]]) -> Iterator[None]:
    """Register hooks from ``handles_factory`` and remove every one of them on exit, whatever happens."""
    handles: list[torch.utils.hooks.RemovableHandle] = []
    try:
        for h in handles_factory():
            handles.append(h)
        yield
    finally:
        for h in handles:
            h.remove()


def active_hook_count(model: nn.Module) -> int:
    """How many forward/backward hooks remain on ``model``'s modules (0 after every ConvLens technique)."""
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        total += len(getattr(m, "_backward_pre_hooks", {}))
    return total


@contextmanager
def module_hooks(hooks: Iterable[tuple[nn.Module, PreHook | None, PostHook | None]]) -> Iterator[None]:
    """Inside the block, ``(module, pre, post)`` hooks run around that module's forward (PyTorch's hook
    semantics: a non-None result replaces the input or the output), on this thread's forwards only."""
    owner = threading.get_ident()

    def ours_pre(fn: PreHook) -> PreHook:
        def pre(module: nn.Module, args: tuple[Any, ...]) -> Any:
            return fn(module, args) if threading.get_ident() == owner else None

        return pre

    def ours_post(fn: PostHook) -> PostHook:
        def post(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
            return fn(module, args, output) if threading.get_ident() == owner else None

        return post

    def register() -> Iterator[torch.utils.hooks.RemovableHandle]:
        for module, pre, post in hooks:
            if pre is not None:
                yield module.register_forward_pre_hook(ours_pre(pre))
            if post is not None:
                yield module.register_forward_hook(ours_post(post))

    with hooked(register):
        yield


@contextmanager
def on_outputs(model: nn.Module, layers: Iterable[str], fn: LayerFn) -> Iterator[None]:
    """Inside the block, ``fn(layer, call, output)`` runs each time a module named in ``layers`` returns.

    ``call`` counts that module's calls since the current forward of ``model`` began (0 for the first:
    ResNet's shared ReLU is called several times per forward); every call counts, whatever its output.
    A non-None result of ``fn`` replaces the module's output; raising :class:`StopForward` ends the
    forward. Only forwards of this thread are seen.
    """
    names = list(dict.fromkeys(layers))
    counts: dict[str, int] = {}

    def new_forward(_model: nn.Module, _args: tuple[Any, ...]) -> None:
        counts.clear()

    def make_hook(name: str) -> PostHook:
        def hook(_module: nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
            call = counts.get(name, 0)
            counts[name] = call + 1
            return fn(name, call, output)

        return hook

    posts = [(m, None, make_hook(n)) for n, m in zip(names, modules_named(model, names), strict=True)]
    with module_hooks([(model, new_forward, None), *posts]):
        yield


class Capture(Mapping[str, Any]):
    """The outputs :func:`capture` recorded in the latest forward, by layer name (a read-only mapping)."""

    def __init__(self, model: nn.Module, layers: list[str], strict: bool) -> None:
        self.model = model
        self.layers = layers
        self.strict = strict
        self.outputs: dict[str, Any] = {}

    def __getitem__(self, layer: str) -> Any:
        return self.outputs[layer]

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)

    @property
    def complete(self) -> bool:
        return all(n in self.outputs for n in self.layers)

    def run(self, *inputs: Any, **kwargs: Any) -> Any:
        """``model(*inputs)``: its output, or None when the forward was stopped early.

        When the capture is strict, a layer that the forward did not call raises InvalidInputError.
        """
        try:
            result = self.model(*inputs, **kwargs)
        except StopForward:
            result = None
        missing = [n for n in self.layers if n not in self.outputs]
        if self.strict and missing:
            quoted = ", ".join(f"'{n}'" for n in missing)
            which = f"Layer {quoted} is" if len(missing) == 1 else f"Layers {quoted} are"
            raise InvalidInputError(f"{which} not called in the model's forward pass.")
        return result


@contextmanager
def capture(
    model: nn.Module,
    layers: Iterable[str],
    *,
    keep_graph: bool = False,
    clone: bool = True,
    stop_after: bool = False,
    strict: bool = False,
    reduce: Callable[[torch.Tensor], Any] | None = None,
) -> Iterator[Capture]:
    """Record the outputs of ``layers`` during this thread's forwards of ``model`` inside the block.

    Each forward starts afresh; a module called several times in one forward reports its first call
    (as ``layer_tree`` does). A module's output is its first tensor.

    - ``keep_graph``: keep the outputs on the autograd graph (DeepVis, attributions); else detached.
    - ``clone``: shield what is kept from in-place ops further down (``ReLU(inplace=True)``): a
      detached output is stored as a copy; a kept-graph output is stored as it is and the rest of the
      forward gets a copy (so the stored tensor stays on the path to the model's output).
    - ``stop_after``: end the forward with :class:`StopForward` once every layer has run (the rest of
      the network is not computed); run the forward with :meth:`Capture.run`, which catches it.
    - ``strict``: a layer without a tensor output raises InvalidInputError, and so does a layer the
      forward never called (checked by :meth:`Capture.run`); otherwise such layers are just absent.
    - ``reduce``: store ``reduce(output)`` (a pooling, a shape) instead of the output, computed in the
      hook so the full output is never kept; pass ``clone=False`` with it.
    """
    names = list(dict.fromkeys(layers))
    cap = Capture(model, names, strict)

    def new_forward(_model: nn.Module, _args: tuple[Any, ...]) -> None:
        cap.outputs.clear()

    def record(name: str, _call: int, output: Any) -> Any:
        if name in cap.outputs:
            return None  # a module called again in the same forward: its first call wins
        t = first_tensor(output)
        if t is None:
            if strict:
                raise InvalidInputError(f"Layer '{name}' produced no tensor output.")
            return None
        if not keep_graph:
            t = t.detach()
        if reduce is not None:
            cap.outputs[name] = reduce(t)
        else:
            cap.outputs[name] = t.clone() if clone and not keep_graph else t
        if stop_after and cap.complete:
            raise StopForward
        if clone and keep_graph and reduce is None and isinstance(output, torch.Tensor):
            return output.clone(memory_format=torch.preserve_format)
        return None

    with module_hooks([(model, new_forward, None)]), on_outputs(model, names, record):
        yield cap


def forward_until(model: nn.Module, layers: Iterable[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` for input ``x`` (no graph), running the forward only as far as they need.

    The rest of the network is skipped (for an early layer most of the cost of a forward). Layers the
    forward does not reach, or that output no tensor, are absent.
    """
    with capture(model, layers, stop_after=True) as cap, torch.inference_mode():
        cap.run(x)
    return dict(cap)
