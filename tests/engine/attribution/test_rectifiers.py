"""The rewritten rectifiers: the reference rule, every activation kind, functional calls, cleanup."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from server.engine.attribution.backprop import Target, backprop_map
from server.engine.attribution.gradcam import gradcam
from server.engine.attribution.rectifiers import rewritten_rectifiers
from server.engine.hooks import active_hook_count
from tests.engine.attribution.nets import ReluNet, TwoPath, conv1x1, function_mode_depth


@pytest.mark.parametrize("mode", ["deconvnet", "guided_backprop"])
@pytest.mark.parametrize("functional", [False, True])
def test_equals_reference_formulation_on_relu_models(mode: str, functional: bool) -> None:
    torch.manual_seed(1)
    ours = ReluNet(functional=functional).eval()
    ref = ReluNet(reference_mode=mode).eval()
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(1, 3, 16, 16)
    for target in (Target(class_index=3), Target(layer="c2", channel=5), Target(layer="c3", neuron=77)):
        got = backprop_map(ours, x, target, mode).map
        want = backprop_map(ref, x, target, "gradient").map  # plain autograd through GuidedReLU
        assert np.abs(want).max() > 0
        np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert active_hook_count(ours) == 0 and function_mode_depth() == 0


class OneAct(nn.Module):
    def __init__(self, act: nn.Module | None, fn=None, sign: float = 1.0) -> None:
        super().__init__()
        self.conv = conv1x1(1, 1, [1.0])
        self.act = act if act is not None else nn.Identity()
        self.fn = fn
        self.out = conv1x1(1, 1, [sign])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        h = self.fn(h) if self.fn is not None else self.act(h)
        return self.out(h)


ACTIVATIONS = {
    "ReLU": (nn.ReLU(), F.relu),
    "ReLU-inplace": (nn.ReLU(inplace=True), F.relu),
    "ReLU6": (nn.ReLU6(inplace=True), F.relu6),
    "LeakyReLU": (nn.LeakyReLU(0.1), lambda t: F.leaky_relu(t, 0.1)),
    "SiLU": (nn.SiLU(inplace=True), F.silu),
    "Hardswish": (nn.Hardswish(), F.hardswish),
    "GELU": (nn.GELU(), F.gelu),
}
FUNCTIONAL = {
    "torch.relu": (torch.relu, F.relu),
    "F.relu-inplace": (lambda t: F.relu(t, inplace=True), F.relu),
    "Tensor.relu": (lambda t: t.relu(), F.relu),
    "F.relu6": (F.relu6, F.relu6),
    "F.leaky_relu": (lambda t: F.leaky_relu(t, 0.1), lambda t: F.leaky_relu(t, 0.1)),
    "F.silu": (F.silu, F.silu),
    "F.gelu": (F.gelu, F.gelu),
    "F.hardswish": (F.hardswish, F.hardswish),
}


def local_slope(fn, x: torch.Tensor) -> torch.Tensor:
    xx = x.clone().requires_grad_(True)
    (d,) = torch.autograd.grad(fn(xx).sum(), xx)
    return d


def check_rules(model: nn.Module, fn, sign: float) -> None:
    x = torch.linspace(-8, 8, 33).reshape(1, 1, 3, 11)
    # Each output neuron in turn: summed, the maps are the per-pixel rule applied to a signal of 1.
    maps = {}
    for method in ("gradient", "deconvnet", "guided_backprop"):
        total = np.zeros((3, 11), np.float32)
        for n in range(33):
            total += backprop_map(model, x, Target(layer="out", neuron=n), method).map[0]
        maps[method] = total
    slope = local_slope(fn, x)[0, 0].numpy()
    np.testing.assert_allclose(maps["gradient"], sign * slope, atol=1e-5)
    np.testing.assert_allclose(maps["deconvnet"], np.full((3, 11), max(sign, 0.0)), atol=1e-6)
    guided = np.where(x[0, 0].numpy() > 0, slope, 0.0) * max(sign, 0.0)
    np.testing.assert_allclose(maps["guided_backprop"], guided, atol=1e-5)
    assert active_hook_count(model) == 0 and function_mode_depth() == 0


@pytest.mark.parametrize("sign", [1.0, -1.0])
@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_rule_per_activation_module(name: str, sign: float) -> None:
    module, fn = ACTIVATIONS[name]
    check_rules(OneAct(module, sign=sign).eval(), fn, sign)


@pytest.mark.parametrize("name", list(FUNCTIONAL))
def test_rule_per_functional_activation(name: str) -> None:
    call, fn = FUNCTIONAL[name]
    check_rules(OneAct(None, fn=call).eval(), fn, 1.0)


def test_batchnormact_fused_activation_is_rewritten() -> None:
    from timm.layers import BatchNormAct2d

    bn = BatchNormAct2d(1, act_layer=nn.ReLU6)
    bn.eval().requires_grad_(False)
    model = nn.Sequential(conv1x1(1, 1, [1.0]), bn, conv1x1(1, 1, [-1.0])).eval()
    x = torch.linspace(-8, 8, 33).reshape(1, 1, 3, 11)
    t = Target(layer="2", neuron=0)
    assert np.abs(backprop_map(model, x, t, "gradient").map).max() == 0  # x[0] = -8: ReLU6 is off
    t = Target(layer="2", neuron=30)  # x = 7 > 6: ReLU6 saturated; slope 0 for gradient and guided
    assert np.abs(backprop_map(model, x, t, "gradient").map).max() == 0
    # Negative incoming signal: deconvnet and guided send nothing back, plain gradient (x = 1) does.
    t = Target(layer="2", neuron=20)
    assert np.abs(backprop_map(model, x, t, "gradient").map).max() > 0
    assert np.abs(backprop_map(model, x, t, "deconvnet").map).max() == 0
    assert np.abs(backprop_map(model, x, t, "guided_backprop").map).max() == 0


def test_no_hooks_remain_after_a_raise_inside_the_block() -> None:
    model = TwoPath(nn.ReLU(inplace=True)).eval()
    with pytest.raises(ValueError), rewritten_rectifiers(model, "guided_backprop"):
        assert active_hook_count(model) > 0 and function_mode_depth() == 1
        raise ValueError
    assert active_hook_count(model) == 0 and function_mode_depth() == 0


def _torchvision(name: str) -> nn.Module:
    import torchvision

    return torchvision.models.get_model(name, weights=None)


def _timm(name: str) -> nn.Module:
    import timm

    return timm.create_model(name, pretrained=False)


def _convnext() -> nn.Module:
    model = _timm("convnext_atto")
    for m in model.modules():  # layer scale starts at 1e-6: the GELU branches would be invisible
        if getattr(m, "gamma", None) is not None:
            m.gamma.data.fill_(1.0)
    return model


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


# Architectures whose rectifiers reach the engine in different ways.
ARCHITECTURES = {
    "resnet18 (nn.ReLU inplace, shared module)": lambda: _torchvision("resnet18"),
    "densenet121 (functional F.relu inplace)": lambda: _torchvision("densenet121"),
    "mobilenet_v3_small (Hardswish, ReLU, SE gates)": lambda: _torchvision("mobilenet_v3_small"),
    "efficientnet_b0 timm (SiLU in BatchNormAct2d)": lambda: _timm("efficientnet_b0"),
    "convnext_atto timm (GELU)": _convnext,
}


@pytest.mark.parametrize("name", list(ARCHITECTURES))
def test_every_method_runs_on_every_architecture(name: str) -> None:
    torch.manual_seed(0)
    model = ARCHITECTURES[name]().eval().requires_grad_(False).to(memory_format=torch.channels_last)
    x = torch.randn(1, 3, 64, 64).contiguous(memory_format=torch.channels_last)
    maps = {}
    for method in ("gradient", "deconvnet", "guided_backprop"):
        a = backprop_map(model, x, Target(class_index=3), method)
        assert a.map.shape == (3, 64, 64) and np.isfinite(a.map).all() and np.abs(a.map).max() > 0, method
        maps[method] = a.map
        assert active_hook_count(model) == 0 and function_mode_depth() == 0
    assert relative_difference(maps["deconvnet"], maps["gradient"]) > 0.05
    assert relative_difference(maps["guided_backprop"], maps["gradient"]) > 0.05
    conv = next(n for n, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.out_channels > 8)
    cam = gradcam(model, x, conv)
    assert cam.map.shape == (64, 64) and np.isfinite(cam.map).all()
    assert all(getattr(m, "inplace", True) in (True, False) for m in model.modules())
    assert active_hook_count(model) == 0 and function_mode_depth() == 0


@pytest.mark.parametrize("functional", [False, True])
def test_rewriting_leaves_other_threads_forwards_alone(functional: bool) -> None:
    torch.manual_seed(1)
    model = ReluNet(functional=functional).eval()
    x = torch.randn(1, 3, 16, 16)
    target = Target(layer="c3", neuron=77)
    plain = backprop_map(model, x, target, "gradient").map
    rule = backprop_map(model, x, target, "deconvnet").map
    assert np.abs(plain - rule).max() > 1e-3
    other: dict[str, object] = {}

    def other_thread() -> None:
        try:
            other["map"] = backprop_map(model, x, target, "gradient").map
        except BaseException as exc:
            other["map"] = exc

    with rewritten_rectifiers(model, "deconvnet"):
        t = threading.Thread(target=other_thread)
        t.start()
        t.join()
        ours = backprop_map(model, x, target, "gradient").map  # this thread's backward follows the rule
    assert isinstance(other["map"], np.ndarray), other["map"]
    np.testing.assert_allclose(other["map"], plain, atol=1e-6)  # the other thread got plain autograd
    np.testing.assert_allclose(ours, rule, atol=1e-6)
    assert active_hook_count(model) == 0 and function_mode_depth() == 0
