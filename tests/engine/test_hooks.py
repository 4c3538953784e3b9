"""The one hook mechanism: capture, on_outputs and module_hooks (thread scope, cleanup, stop, replace)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from server.engine.hooks import (
    Capture,
    StopForward,
    active_hook_count,
    capture,
    forward_until,
    get_module,
    module_hooks,
    on_outputs,
)
from server.errors import InvalidInputError, NotFoundError

ROOT = Path(__file__).resolve().parents[2]


class Recorder(nn.Module):
    """An identity that notes every call (so a test sees what the forward reached without a hook)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[torch.Tensor] = []

    def forward(self, x):
        self.calls.append(x)
        return x


class Tiny(nn.Module):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(2, 1)
        self.fail = fail
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))

    def forward(self, x):
        y = self.act(self.conv(x))
        if self.fail:
            raise RuntimeError("boom mid-forward")
        return self.fc(y.mean((2, 3)))


class Shared(nn.Module):
    """ResNet's pattern: one ReLU module called twice per forward (first on x, then on -x)."""

    def __init__(self) -> None:
        super().__init__()
        self.act = nn.ReLU()
        self.after = Recorder()

    def forward(self, x):
        return self.after(self.act(x) + self.act(-2 * x))


def test_capture_returns_pre_inplace_values():
    m = Tiny()
    x = torch.ones(1, 1, 2, 2)
    with capture(m, ["conv", "act"]) as acts:
        m(x)
    # The in-place ReLU must not rewrite the captured conv output.
    assert acts["conv"][0, 1].eq(-1).all()
    assert acts["act"][0, 1].eq(0).all()
    assert active_hook_count(m) == 0


def test_kept_graph_output_is_shielded_from_inplace_ops_and_stays_on_the_graph():
    m = Tiny().requires_grad_(False)
    x = torch.ones(1, 1, 2, 2, requires_grad=True)
    with capture(m, ["conv"], keep_graph=True) as acts:
        out = acts.run(x)
    conv = acts["conv"]
    assert conv.requires_grad and conv[0, 1].eq(-1).all()  # the in-place ReLU rewrote a copy
    (grad,) = torch.autograd.grad(out.sum(), conv)  # the stored tensor is on the path to the output
    assert grad[0, 1].eq(0).all() and grad[0, 0].ne(0).all()
    assert active_hook_count(m) == 0


def test_hooks_removed_when_forward_raises():
    m = Tiny(fail=True)
    with pytest.raises(RuntimeError, match="boom"), capture(m, ["conv", "act", "fc"]):
        m(torch.ones(1, 1, 2, 2))
    assert active_hook_count(m) == 0
    assert all(len(mod._forward_hooks) == 0 for mod in m.modules())


@pytest.mark.parametrize("how", ["capture", "stop_after", "on_outputs", "module_hooks", "hook_raises"])
def test_every_helper_removes_its_hooks_after_a_raising_forward(how: str):
    m = Tiny(fail=how != "hook_raises")
    x = torch.ones(1, 1, 2, 2)

    def boom(*_args):
        raise RuntimeError("boom in a hook")

    helpers: dict[str, Callable] = {
        "capture": lambda: capture(m, ["conv", "act"], keep_graph=True),
        "stop_after": lambda: capture(m, ["conv", "fc"], stop_after=True, strict=True),
        "on_outputs": lambda: on_outputs(m, ["conv", "act"], lambda *_a: None),
        "module_hooks": lambda: module_hooks([(m.conv, lambda *_a: None, lambda *_a: None)]),
        "hook_raises": lambda: on_outputs(m, ["act"], boom),
    }
    with pytest.raises(RuntimeError, match="boom"), helpers[how]():
        m(x)
    assert active_hook_count(m) == 0


def test_unknown_layer_names_closest_matches():
    m = Tiny()
    with pytest.raises(NotFoundError) as e:
        get_module(m, "cnov")
    assert "conv" in e.value.message
    with pytest.raises(NotFoundError, match="cnov"), capture(m, ["conv", "cnov"]):
        pass
    assert active_hook_count(m) == 0


def test_no_hooks_remain_after_failed_forward_on_real_model(lite0):
    bad = torch.zeros(1, 3, 7)  # wrong rank: the forward raises inside the model
    with pytest.raises(RuntimeError), capture(lite0.model, ["conv_stem", "blocks.3"]):
        lite0.model(bad)
    assert active_hook_count(lite0.model) == 0


def test_forward_until_stops_after_the_layer_and_cleans_up():
    m = Tiny()
    m.fc = nn.Sequential(Recorder(), m.fc)
    acts = forward_until(m, ["act"], torch.ones(1, 1, 2, 2))
    assert m.fc[0].calls == []  # the layers after `act` were never computed
    assert acts["act"][0, 0].eq(1).all() and acts["act"][0, 1].eq(0).all()
    assert active_hook_count(m) == 0


def test_the_one_stop_exception_ends_the_forward_and_run_catches_it():
    m = Tiny()
    m.fc = nn.Sequential(Recorder(), m.fc)
    x = torch.ones(1, 1, 2, 2)
    with capture(m, ["conv", "act"], stop_after=True) as acts:
        with pytest.raises(StopForward):
            m(x)  # a forward run outside Capture.run sees the stop exception itself
        assert set(acts) == {"conv", "act"}
        assert acts.run(x) is None  # stopped early: no model output
        assert m.fc[0].calls == []
    assert active_hook_count(m) == 0
    with capture(m, ["act"]) as acts:  # without stop_after the forward runs to the end
        assert acts.run(x).shape == (1, 1)
    assert len(m.fc[0].calls) == 1


class SeesStops(nn.Module):
    """Counts the StopForward exceptions that end its forward, and notes whether its head ran."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.act = nn.ReLU()
        self.head = nn.Sequential(nn.Flatten(), Recorder(), nn.Linear(4 * 2 * 2, 3))
        self.stops = 0

    def forward(self, x):
        try:
            return self.head(self.act(self.conv(x)))
        except StopForward:
            self.stops += 1
            raise


def _techniques() -> dict[str, Callable[[nn.Module, torch.Tensor], object]]:
    from server.engine.attribution import top_filters
    from server.engine.features import extract
    from server.engine.optvis.render import layer_outputs

    return {
        "forward_until": lambda m, x: forward_until(m, ["act"], x),
        "features": lambda m, x: extract(m, "act", [x]),
        "attribution": lambda m, x: top_filters(m, x, "act", 2),
        "optvis": lambda m, x: layer_outputs(m, x, ["act"]),
    }


@pytest.mark.parametrize("technique", ["forward_until", "features", "attribution", "optvis"])
def test_every_technique_stops_early_with_the_one_stop_exception(technique: str):
    m = SeesStops().eval()
    _techniques()[technique](m, torch.randn(1, 3, 2, 2))
    assert m.stops == 1  # the forward ended with hooks.StopForward, not a private exception
    assert m.head[1].calls == []  # and the network after the layer was not computed
    assert active_hook_count(m) == 0


class NoTensor(nn.Module):
    def forward(self, x):
        return None


def test_strict_capture_names_layers_not_called_or_without_a_tensor():
    class Odd(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Identity()
            self.unused = nn.Identity()
            self.unused2 = nn.Identity()
            self.none = NoTensor()

        def forward(self, x):
            self.none(x)
            return self.used(x)

    m = Odd()
    x = torch.ones(1, 2)
    cases = {
        ("used", "unused"): "Layer 'unused' is not called in the model's forward pass",
        ("unused", "used", "unused2"): "Layers 'unused', 'unused2' are not called",
        ("none", "used"): "Layer 'none' produced no tensor output",
    }
    for layers, message in cases.items():
        with capture(m, layers, strict=True) as acts, pytest.raises(InvalidInputError, match=message):
            acts.run(x)
    with capture(m, ["none", "used", "unused"]) as acts:  # not strict: such layers are just absent
        acts.run(x)
    assert set(acts) == {"used"}
    assert active_hook_count(m) == 0


def test_first_call_wins_and_every_forward_starts_afresh():
    m = Shared()
    with capture(m, ["act"]) as acts:
        m(torch.tensor([1.0, -1.0]))
        assert acts["act"].tolist() == [1.0, 0.0]  # relu(x), not relu(-2x)
        m(torch.tensor([-3.0, 2.0]))
        assert acts["act"].tolist() == [0.0, 2.0]  # the second forward's first call
    seen: list[tuple[str, int, list[float]]] = []
    with on_outputs(m, ["act"], lambda name, call, out: seen.append((name, call, out.tolist()))):
        m(torch.tensor([1.0, -1.0]))
        m(torch.tensor([1.0, -1.0]))
    assert seen == [("act", 0, [1.0, 0.0]), ("act", 1, [0.0, 2.0])] * 2  # call counters reset per forward
    assert active_hook_count(m) == 0


def test_reduce_stores_what_the_hook_computes():
    m = Tiny()
    with capture(m, ["conv", "fc"], clone=False, reduce=lambda t: tuple(t.shape)) as shapes:
        shapes.run(torch.ones(3, 1, 2, 2))
    assert dict(shapes) == {"conv": (3, 2, 2, 2), "fc": (3, 1)}


def test_replacement_at_one_call_rewrites_only_that_output():
    m = Shared()

    def zero_second_call(_name: str, call: int, out: torch.Tensor) -> torch.Tensor | None:
        return torch.zeros_like(out) if call == 1 else None

    x = torch.tensor([1.0, -1.0])
    with on_outputs(m, ["act"], zero_second_call):
        assert m(x).tolist() == [1.0, 0.0]  # relu(x) + 0
    assert m(x).tolist() == [1.0, 2.0]  # relu(x) + relu(-2x) once the hooks are gone
    with module_hooks([(m.act, lambda _m, args: (args[0] * 0,), None)]):  # a pre-hook replaces inputs
        assert m(x).tolist() == [0.0, 0.0]
    assert active_hook_count(m) == 0


# --- thread scope -------------------------------------------------------------------------------------


class Held(nn.Module):
    """The model of the thread tests: our forward is held inside until the other thread's forward ran."""

    def __init__(self) -> None:
        super().__init__()
        self.main = threading.get_ident()
        self.inside, self.release = threading.Event(), threading.Event()
        self.conv = nn.Conv2d(1, 1, 1, bias=False)
        self.act = nn.ReLU()
        self.after = Recorder()
        with torch.no_grad():
            self.conv.weight.fill_(1.0)

    def forward(self, x):
        if threading.get_ident() == self.main:
            self.inside.set()
            assert self.release.wait(10)
        return self.after(self.act(self.conv(x)))


def _zero(*_args):
    return torch.zeros(1, 1, 2, 2)


MODES: dict[str, Callable[[Held], AbstractContextManager[Any]]] = {
    "capture": lambda m: capture(m, ["act"]),
    "keep_graph": lambda m: capture(m, ["act"], keep_graph=True),
    "stop_after": lambda m: capture(m, ["act", "after"], stop_after=True, strict=True),
    "reduce": lambda m: capture(m, ["act"], clone=False, reduce=lambda t: t.sum()),
    "on_outputs replacing": lambda m: on_outputs(m, ["act", "after"], _zero),
    "module_hooks replacing": lambda m: module_hooks([(m.conv, lambda *_a: (_zero(),), _zero)]),
}


@pytest.mark.parametrize("mode", list(MODES))
def test_hooks_ignore_and_do_not_disturb_other_threads_forwards(mode: str):
    m = Held()
    results: dict[str, object] = {}

    def other_thread():
        assert m.inside.wait(10)
        try:
            results["other"] = m(torch.full((1, 1, 2, 2), 5.0))  # a full forward while our hooks are on
        except BaseException as exc:
            results["other"] = exc
        m.release.set()

    t = threading.Thread(target=other_thread)
    t.start()
    with MODES[mode](m) as acts:
        mine = acts.run(torch.ones(1, 1, 2, 2)) if isinstance(acts, Capture) else m(torch.ones(1, 1, 2, 2))
    t.join()
    # the other thread's forward ran to the end, untouched: not stopped, not replaced ...
    assert isinstance(results["other"], torch.Tensor), results["other"]
    assert results["other"].eq(5.0).all()
    assert len(m.after.calls) == 2 and m.after.calls[0].eq(5.0).all()  # it reached `after` first
    # ... and not recorded: what we captured is our forward's (ones), or our replacement (zeros)
    if mode in ("capture", "keep_graph", "stop_after"):
        assert acts["act"].eq(1.0).all()
        assert (mine is None) == (mode == "stop_after")
    elif mode == "reduce":
        assert float(acts["act"]) == 4.0
    else:
        assert mine.eq(0.0).all()
    assert active_hook_count(m) == 0


def test_forward_until_leaves_other_threads_forwards_alone():
    m = Held()
    results: dict[str, object] = {}

    def other_thread():
        assert m.inside.wait(10)
        results["other"] = m(torch.full((1, 1, 2, 2), 5.0))
        m.release.set()

    t = threading.Thread(target=other_thread)
    t.start()
    acts = forward_until(m, ["act"], torch.ones(1, 1, 2, 2))
    t.join()
    assert isinstance(results["other"], torch.Tensor) and results["other"].eq(5.0).all()
    assert acts["act"].eq(1.0).all()
    assert active_hook_count(m) == 0


# --- one mechanism -------------------------------------------------------------------------------------


def test_module_hooks_are_registered_only_in_hooks_py():
    pattern = re.compile(r"register_(forward_hook|forward_pre_hook|full_backward|module_forward)")
    offenders = [
        str(p.relative_to(ROOT))
        for folder in ("server", "bench", "dashboard", "tests")
        for p in (ROOT / folder).rglob("*.py")
        if pattern.search(p.read_text()) and p != ROOT / "server" / "engine" / "hooks.py"
    ]
    assert offenders == []
