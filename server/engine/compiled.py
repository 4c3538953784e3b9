"""Compiled inference (issue 19): `torch.compile`d forwards, built in the background, used once ready.

:meth:`Compiler.forward` answers "is there a compiled forward of this model, up to this layer, for
inputs shaped like this one?" with a callable, or with None after queueing its compile on the one
background thread, so the caller runs eager meanwhile and never waits on a compile. What is compiled
is never the served model itself but:

- :func:`private_copy`: a copy of the module tree that shares every parameter and buffer (no extra
  weight memory) and carries none of the shared model's hooks. ConvLens' hooks are thread-scoped and
  come and go with each request (``server.engine.hooks``); Dynamo would trace whatever hooks happen to
  be installed by another thread at compile time, and ignores hooks added later. A private tree that
  nobody hooks makes the compiled graph independent of what other requests do;
- :func:`truncated`: that copy traced by ``torch.fx`` into a graph that ends at the layer's output
  (the first call of that module, as :func:`~server.engine.hooks.capture` records it), so early
  stopping is part of the graph. Each entry is its own ``GraphModule`` class, hence its own Dynamo
  cache, whatever else is compiled.

The paths that need hooks or gradients stay eager by design: attributions, DeepVis and Grad-CAM
(backward through rewritten rectifiers), the audit (per-call hooks on many layers, what-if zeroing
that rewrites outputs) and the opt-in fast precision (autocast: another set of guards and kernels,
already 1.8x). A compiled forward is checked once against the hooked eager forward on its warm-up input;
one that differs by more than ``tolerance`` or fails to build is not used, and the reason is logged.

Compiled code is cached on disk by Inductor (its FX-graph and AOTAutograd caches) under
``cache_dir``, so a restarted server recompiles a known graph from cache in seconds.
"""

from __future__ import annotations

import copy
import itertools
import logging
import os
import queue
import shutil
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.fx as fx
from torch import nn

from server.engine.hooks import forward_until

log = logging.getLogger("convlens.compile")

COMPILE_MODES = ("auto", "off")
Forward = Callable[[torch.Tensor], torch.Tensor]
_HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)


class CompileUnsupported(Exception):
    """This model or layer cannot be compiled; the message says why (it is served eager)."""


def unavailable_reason(device: torch.device) -> str | None:
    """Why nothing can be compiled on ``device`` here, or None when Inductor can run."""
    if device.type == "cpu" and not any(shutil.which(c) for c in (os.environ.get("CXX", ""), "g++", "c++")):
        return "no C++ compiler (g++) on PATH: Inductor needs one to build CPU kernels"
    if device.type not in ("cpu", "cuda"):
        return f"no Inductor backend for device '{device.type}'"
    return None


def private_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s module tree that shares its parameters and buffers and has no hooks."""
    shared = {id(t): t for t in itertools.chain(model.parameters(), model.buffers())}
    for _ in range(3):  # another thread may add or remove a hook while the tree is copied
        try:
            clone = copy.deepcopy(model, memo=dict(shared))
            break
        except RuntimeError:  # "dictionary changed size during iteration"
            time.sleep(0.01)
    else:
        raise CompileUnsupported("the model's hooks kept changing while it was copied")
    for m in clone.modules():
        for name in _HOOK_DICTS:
            d = getattr(m, name, None)
            if d is not None:
                d.clear()
    return clone


def _leaf_types() -> tuple[type, ...]:
    try:  # timm's modules and functions that torch.fx cannot trace through (same-padding convs, ...)
        from timm.layers import get_notrace_modules

        return tuple(get_notrace_modules())
    except ImportError:  # pragma: no cover - timm is a dependency
        return ()


def _autowrap() -> tuple[Callable[..., Any], ...]:
    try:
        from timm.layers import get_notrace_functions

        return tuple(get_notrace_functions())
    except ImportError:  # pragma: no cover
        return ()


class _UntilTracer(fx.Tracer):
    """torch.fx's tracer, also remembering the output of the first call of module ``layer``.

    While it traces, torch.fx patches ``nn.Module.__call__`` and ``nn.Module.__getattr__`` for the whole
    process; this tracer hands every call from another thread straight to the module (and every
    attribute as it is), so requests that run eager forwards meanwhile (the private copy shares their
    parameters) are not traced into this graph and never see a Proxy.
    """

    def __init__(self, layer: str | None) -> None:
        super().__init__(autowrap_functions=_autowrap())
        self.layer = layer
        self.leaves = _leaf_types()
        self.found: Any = None
        self.owner = threading.get_ident()

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return super().is_leaf_module(m, qualname) or isinstance(m, self.leaves)

    def getattr(self, attr: str, attr_val: Any, parameter_proxy_cache: dict[str, Any]) -> Any:
        if threading.get_ident() != self.owner:
            return attr_val
        return super().getattr(attr, attr_val, parameter_proxy_cache)

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: Any, kwargs: Any) -> Any:
        if threading.get_ident() != self.owner:  # another thread's forward, run as if nothing were patched
            return forward(*args, **kwargs)
        out = super().call_module(m, forward, args, kwargs)
        if self.found is None and self.layer is not None and self.path_of_module(m) == self.layer:
            self.found = out
        return out


def truncated(model: nn.Module, layer: str | None) -> fx.GraphModule:
    """``model`` as an fx graph whose output is ``layer``'s output (the whole forward for None), the rest
    of the network dropped. Raises :class:`CompileUnsupported` when torch.fx cannot trace the model."""
    tracer = _UntilTracer(layer)
    try:
        graph = tracer.trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, ... for untraceable Python
        raise CompileUnsupported(f"torch.fx cannot trace it ({type(exc).__name__}: {exc})") from exc
    if layer is not None:
        if not isinstance(tracer.found, fx.Proxy):
            raise CompileUnsupported(f"layer '{layer}' is not reached as a module call in the traced graph")
        out = next(n for n in graph.nodes if n.op == "output")
        out.args = (tracer.found.node,)
    gm = fx.GraphModule(tracer.root, graph, f"ConvLensUntil_{(layer or 'output').replace('.', '_')}")
    gm.graph.eliminate_dead_code()
    gm.recompile()
    return gm


BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


def bucket(n: int) -> int | None:
    """The rows a batch of ``n`` is padded to (None: larger than the largest bucket, served eager)."""
    return next((b for b in BUCKETS if b >= n), None)


def largest_bucket(n: int) -> int:
    """The most of ``n`` queued inputs that make a batch with no padding rows (the largest bucket <= n):
    the dynamic batcher's ``take`` while compiling, so that a batch of 5 runs as 4 (and the fifth waits
    for the next arrivals) instead of paying for 8."""
    return max(b for b in BUCKETS if b <= max(1, n))


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _strides(shape: tuple[int, ...], fmt: torch.memory_format) -> tuple[int, ...]:
    """The strides a fresh tensor of ``shape`` in ``fmt`` has (what the compile's guards saw)."""
    return torch.empty(shape, device="meta").contiguous(memory_format=fmt).stride()


def _canonical(
    x: torch.Tensor, fmt: torch.memory_format, want: tuple[int, ...] | None = None
) -> torch.Tensor:
    """``x`` with the strides of a fresh tensor of its shape in ``fmt`` (``want``, when known)."""
    if x.stride() == (want or _strides(tuple(x.shape), fmt)):
        return x
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device).contiguous(memory_format=fmt)
    return out.copy_(x)


@dataclass
class _Entry:
    """One (model, layer): the graph to compile, the input signatures compiled for it, and why not."""

    copy: nn.Module | None = None  # the private copy the graph was cut from (hooked to check it)
    graph: fx.GraphModule | None = None
    compiled: Callable[..., Any] | None = None
    ready: dict[tuple[Any, ...], Forward] = field(default_factory=dict)  # signature -> its compiled forward
    hits: dict[tuple[Any, ...], int] = field(default_factory=dict)
    queued: set[tuple[Any, ...]] = field(default_factory=set)
    failed: str | None = None


@dataclass
class CompileStats:
    compiled: int = 0  # graphs x input signatures ready
    failed: int = 0
    seconds: float = 0.0  # spent compiling
    served: int = 0  # forwards answered by compiled code


class Compiler:
    """Compiled forwards of loaded models, compiled one at a time on a background thread.

    ``mode="off"`` (or no Inductor on the device) makes :meth:`forward` always answer None. Entries are
    held per model object (weakly: a model the zoo evicts takes its compiled graphs with it). A graph is
    compiled once ``min_hits`` forwards asked for it (a compile costs tens of seconds of CPU: a layer
    browsed once is not worth it, one a webcam or a data set streams through is), or at once with
    ``now=True`` (the default model's predict at start-up).
    """

    def __init__(
        self,
        mode: str = "auto",
        cache_dir: Path | None = None,
        *,
        min_hits: int = 1,
        tolerance: float = 1e-4,
    ) -> None:
        if mode not in COMPILE_MODES:
            raise ValueError(f"compile mode must be one of {COMPILE_MODES}, got {mode!r}")
        self.mode = mode
        self.cache_dir = cache_dir
        self.min_hits = max(1, min_hits)
        self.tolerance = tolerance
        self.stats = CompileStats()
        self._entries: weakref.WeakKeyDictionary[nn.Module, dict[str | None, _Entry]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[weakref.ref[nn.Module], str | None, torch.Tensor] | None] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()
        self._prepared = threading.Event()

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def forward(
        self, model: nn.Module, layer: str | None, x: torch.Tensor, *, now: bool = False
    ) -> Forward | None:
        """The compiled forward of ``model`` up to ``layer`` (None: its output) for inputs like ``x``, or
        None when there is none yet (its compile is then queued) or will be none (off, failed, a batch
        larger than the largest bucket). The callable runs under ``torch.inference_mode`` and returns the
        layer's output for ``x``'s rows: a batch is padded with zero rows to its bucket (1, 2, 4, ... 128
        rows; 128 for dataset features), so a few compiles serve every batch size."""
        if not self.enabled:
            return None
        rows = bucket(x.shape[0])
        if rows is None:
            return None
        fmt = _memory_format(x)
        sig = ((rows, *x.shape[1:]), fmt, x.dtype, str(x.device))
        with self._lock:
            entry = self._entries.setdefault(model, {}).setdefault(layer, _Entry())
            if entry.failed is not None:
                return None
            if (ready := entry.ready.get(sig)) is not None:
                self.stats.served += 1
                return ready
            if sig in entry.queued:
                return None
            entry.hits[sig] = hits = entry.hits.get(sig, 0) + 1
            if hits < self.min_hits and not now:
                return None
            if (reason := unavailable_reason(x.device)) is not None:
                entry.failed = reason
                log.warning("compile: serving eager: %s", reason)
                return None
            entry.queued.add(sig)
            self._idle.clear()
            self._queue.put((weakref.ref(model), layer, _example(sig)))
            self._start()
        return None

    def status(self, model: nn.Module, layer: str | None = None) -> dict[str, Any]:
        """What is compiled for ``model`` up to ``layer``: ``{"ready": n shapes, "queued": n, "failed": why}``."""
        with self._lock:
            entry = self._entries.get(model, {}).get(layer)
            if entry is None:
                return {"ready": 0, "queued": 0, "failed": None}
            return {"ready": len(entry.ready), "queued": len(entry.queued), "failed": entry.failed}

    def prepare(self, device: torch.device | None = None) -> threading.Event:
        """Start the compile thread and prepare the compiler stack on it now (imports, probes and one
        tiny compile: seconds on this CPU), so that no compile pays for them; the event is set when done.
        Start-up calls this before loading the default model and waits for it before reporting ready.
        Where nothing can compile on ``device`` (no C++ compiler), it says why once and prepares nothing."""
        reason = unavailable_reason(device or torch.device("cpu")) if self.enabled else None
        if reason is not None:
            log.warning("compile: serving eager: %s", reason)
        if not self.enabled or reason is not None:
            self._prepared.set()
        else:
            with self._lock:
                self._idle.clear()
                self._queue.put(_PREPARE)
                self._start()
        return self._prepared

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued compile has finished (tests, benchmarks, warm-up scripts)."""
        return self._idle.wait(timeout)

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)

    # --- the background thread ---------------------------------------------------------------------

    def _start(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._work, name="convlens-compile", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        if (
            self.cache_dir is not None
        ):  # Inductor reads it at each cache access; importing timm sets a default
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(self.cache_dir)
        while (item := self._queue.get()) is not None:
            if item is _PREPARE:
                _import_compiler_stack()
                self._prepared.set()
            else:
                ref, layer, example = item
                if (model := ref()) is not None:
                    self._compile(model, layer, example)
                del model
            with self._lock:
                if self._queue.empty():
                    self._idle.set()

    def _compile(self, model: nn.Module, layer: str | None, example: torch.Tensor) -> None:
        fmt = _memory_format(example)
        sig = (tuple(example.shape), fmt, example.dtype, str(example.device))
        with self._lock:
            entry = self._entries.setdefault(model, {}).setdefault(layer, _Entry())
        what = f"{type(model).__name__} up to {layer or 'its output'} for input {tuple(example.shape)}"
        start = time.perf_counter()
        try:
            if entry.graph is None:
                entry.copy = private_copy(model)
                entry.graph = truncated(entry.copy, layer)
                entry.compiled = torch.compile(entry.graph, dynamic=False, fullgraph=True)
            assert entry.compiled is not None
            assert entry.copy is not None
            # what the eager path answers: the hooked forward, stopped at the layer
            with torch.inference_mode():
                expected = (
                    entry.copy(example)
                    if layer is None
                    else forward_until(entry.copy, [layer], example)[layer]
                )
            run = _run(entry.compiled, tuple(example.shape), fmt)
            got = run(example)
            if not isinstance(got, torch.Tensor) or got.shape != expected.shape:
                raise CompileUnsupported("the layer's output is not one tensor")
            err = float(
                (got.float() - expected.float()).abs().max() / expected.float().abs().max().clamp_min(1e-12)
            )
            if not err <= self.tolerance:
                raise CompileUnsupported(f"compiled output differs from eager by {err:.1e} (relative)")
        except Exception as exc:  # a model that fails to compile is served eager, with the reason logged
            expected_refusal = isinstance(exc, CompileUnsupported)  # e.g. a layer inside a timm leaf module
            reason = str(exc) if expected_refusal else f"{type(exc).__name__}: {exc}"
            with self._lock:
                entry.failed = reason.splitlines()[0][:300] if reason else type(exc).__name__
                entry.queued.discard(sig)
                self.stats.failed += 1
            log.log(
                logging.INFO if expected_refusal else logging.WARNING,
                "compile: %s stays eager: %s",
                what,
                entry.failed,
            )
            return
        took = time.perf_counter() - start
        with self._lock:
            entry.queued.discard(sig)
            entry.ready[sig] = run
            self.stats.compiled += 1
            self.stats.seconds += took
        log.info("compile: %s ready in %.1f s", what, took)


_PREPARE: Any = ("prepare",)


def _tiny(x: torch.Tensor) -> torch.Tensor:
    return torch.relu(x) * 2 + 1


def _import_compiler_stack() -> None:
    """Import Dynamo and Inductor and run one tiny compile: the imports, the CPU's vector-ISA probe (a
    C++ test program) and Inductor's first-use set-up all happen here, once per process."""
    try:
        with torch.inference_mode():
            torch.compile(_tiny, dynamic=False, fullgraph=True)(torch.ones(8))
    except Exception:  # the first real compile then says what is wrong, and that model stays eager
        log.exception("compile: preparing torch's compiler failed")


def _example(sig: tuple[Any, ...]) -> torch.Tensor:
    """A seeded random input of signature ``(shape, memory format, dtype, device)``: what the guards see."""
    shape, fmt, dtype, device = sig
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device=device, dtype=dtype)
    return _canonical(noise, fmt)


def _run(compiled: Callable[..., Any], shape: tuple[int, ...], fmt: torch.memory_format) -> Forward:
    """``compiled`` (built for inputs of ``shape`` in ``fmt``) for a batch of up to ``shape[0]`` rows."""
    rows, want = shape[0], _strides(shape, fmt)  # once per compiled signature, not per forward

    def run(x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        if n < rows:  # eval mode: rows are independent, the zero rows change nothing in the others
            x = torch.cat([x, x.new_zeros((rows - n, *x.shape[1:]))])
        x = _canonical(x, fmt, want)  # the layout it was compiled for (Dynamo guards on strides)
        with torch.inference_mode():  # the grad mode it was compiled under
            out: torch.Tensor = compiled(x)
        return out[:n] if n < rows else out

    return run
