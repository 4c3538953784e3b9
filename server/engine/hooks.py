"""Forward hooks that are always removed, and module lookup by dotted ``named_modules()`` name."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from server.errors import NotFoundError


def get_module(model: nn.Module, name: str) -> nn.Module:
    """The submodule called ``name`` in ``model.named_modules()``; 404-style error naming close matches."""
    modules = dict(model.named_modules())
    if name not in modules or name == "":
        raise NotFoundError.with_suggestions("layer", name, [n for n in modules if n])
    return modules[name]


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


@contextmanager
def capture_activations(
    model: nn.Module, layers: Iterable[str], *, detach: bool = True, clone: bool = True
) -> Iterator[dict[str, torch.Tensor]]:
    """Record the outputs of ``layers`` during forwards inside the block.

    A module called several times in one forward reports its first call, matching ``layer_tree``.
    Only forwards run by the thread that opened the block are recorded, so a concurrent forward on
    the same shared model neither pollutes nor is disturbed by the capture.
    Outputs are cloned by default: an in-place activation further down (``ReLU(inplace=True)``)
    would otherwise rewrite a captured conv output. Hooks are removed on exit even when the
    forward raises.
    """
    names = list(dict.fromkeys(layers))
    modules = [(n, get_module(model, n)) for n in names]
    store: dict[str, torch.Tensor] = {}
    # A module called several times per forward (ResNet's shared ReLU): its first call wins.
    seen: set[str] = set()
    # Forwards that other threads run on the same shared model are not ours to record.
    owner = threading.get_ident()

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inp: Any, output: Any) -> None:
            if threading.get_ident() != owner:
                return
            t = first_tensor(output)
            if t is None or name in seen:
                return
            seen.add(name)
            if detach:
                t = t.detach()
            store[name] = t.clone() if clone else t

        return hook

    def new_forward(_module: nn.Module, _inp: Any) -> None:
        if threading.get_ident() == owner:
            seen.clear()

    def register() -> Iterator[torch.utils.hooks.RemovableHandle]:
        yield model.register_forward_pre_hook(new_forward)
        for n, m in modules:
            yield m.register_forward_hook(make_hook(n))

    with hooked(register):
        yield store


def active_hook_count(model: nn.Module) -> int:
    """How many forward/backward hooks remain on ``model``'s modules (0 after every ConvLens technique)."""
    total = 0
    for m in model.modules():
        total += len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
        total += len(getattr(m, "_backward_pre_hooks", {}))
    return total


class _LayersReached(Exception):
    """Ends a forward early once every wanted layer has produced its output."""


def forward_until(model: nn.Module, layers: Iterable[str], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` for input ``x``, running the forward only as far as they need.

    The rest of the network is skipped (for an early layer most of the cost of a forward).
    Hooks are removed on exit, whether the forward finished, stopped early or raised.
    """
    names = list(dict.fromkeys(layers))
    with capture_activations(model, names) as acts:
        owner = threading.get_ident()

        def stop_when_done(_m: nn.Module, _i: Any, _o: Any) -> None:
            # Only this thread's forward stops early; a concurrent forward on the same model runs on.
            if threading.get_ident() == owner and all(n in acts for n in names):
                raise _LayersReached

        last = [get_module(model, n) for n in names]
        with hooked(lambda: (m.register_forward_hook(stop_when_done) for m in last)):
            try:
                with torch.inference_mode():
                    model(x)
            except _LayersReached:
                pass
        return dict(acts)
