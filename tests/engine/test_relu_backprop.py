"""Deconvnet / guided backprop / gradient / Grad-CAM: hand-computed maps, the reference rule, cleanup."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from server.engine.hooks import active_hook_count
from server.engine.relu_backprop import (
    Target,
    attribute,
    backprop_map,
    backprop_top_filters,
    gradcam,
    rewritten_rectifiers,
)
from server.errors import InvalidInputError, NotFoundError


def function_mode_depth() -> int:
    return torch._C._len_torch_function_stack()


def conv1x1(cin: int, cout: int, weights: list[float], bias: list[float] | None = None) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1, bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights, dtype=torch.float32).reshape(cout, cin, 1, 1))
        if bias is not None:
            conv.bias.copy_(torch.tensor(bias))
    conv.requires_grad_(False)
    return conv


class TwoPath(nn.Module):
    """y = 2 relu(x) - relu(-x), elementwise: the three rules give three different maps."""

    def __init__(self, act: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(1, 2, [1.0, -1.0])
        self.act = act if act is not None else nn.ReLU()
        self.conv2 = conv1x1(2, 1, [2.0, -1.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(x)))


X = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])


def neuron_map(model: nn.Module, method: str, neuron: int) -> np.ndarray:
    return backprop_map(model, X, Target(layer="conv2", neuron=neuron), method).map[0]


@pytest.mark.parametrize("inplace", [False, True])
def test_hand_computed_maps_on_two_path_model(inplace: bool) -> None:
    model = TwoPath(nn.ReLU(inplace=inplace)).eval()
    # Output position (0, 1), where x = -2: the relu(x) path is off, relu(-x) is on with weight -1.
    #   gradient: d/dx [-relu(-x)] = +1;  deconvnet: relu(2) * 1 + relu(-1) * (-1) = 2;
    #   guided: path 1 input -2 <= 0 -> 0, path 2 incoming -1 <= 0 -> 0.
    expect = {"gradient": 1.0, "deconvnet": 2.0, "guided_backprop": 0.0}
    for method, value in expect.items():
        m = neuron_map(model, method, 1)
        want = np.zeros((2, 2), np.float32)
        want[0, 1] = value
        np.testing.assert_allclose(m, want, atol=1e-7, err_msg=method)
    # Position (1, 0), where x = 3: every rule gives 2 (only the positive path is active).
    for method in expect:
        m = neuron_map(model, method, 2)
        want = np.zeros((2, 2), np.float32)
        want[1, 0] = 2.0
        np.testing.assert_allclose(m, want, atol=1e-7, err_msg=method)
    assert active_hook_count(model) == 0


class PoolNet(nn.Module):
    """relu -> 2x2 max-pool -> linear: the map lands on the pool's switch only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = conv1x1(1, 2, [1.0, -1.0])
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(2, 1)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[2.0, 0.5]]))
            self.fc.bias.zero_()
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


@pytest.mark.parametrize("method", ["deconvnet", "guided_backprop", "gradient"])
def test_max_pool_routes_through_switches(method: str) -> None:
    # relu(x) peaks at (1, 0) = 3 -> +2; relu(-x) peaks at (0, 1) = 2 -> 0.5 * (-1) back through conv.
    attr = backprop_map(PoolNet().eval(), X, Target(class_index=0), method)
    want = np.array([[0.0, -0.5], [2.0, 0.0]], np.float32)
    np.testing.assert_allclose(attr.map[0], want, atol=1e-7)
    assert attr.value == pytest.approx(2 * 3 + 0.5 * 2)


def test_filter_target_max_and_all() -> None:
    model = TwoPath().eval()
    # Channel 0 of the activation is relu(x) = [[1, 0], [3, 0.5]]; strongest at (1, 0).
    a = backprop_map(model, X, Target(layer="act", channel=0, position="max"), "deconvnet")
    assert a.position == (1, 0) and a.value == pytest.approx(3.0)
    np.testing.assert_allclose(a.map[0], [[0, 0], [3, 0]], atol=1e-7)
    # "all" sends the whole map back (activations as the signal, Zeiler & Fergus).
    b = backprop_map(model, X, Target(layer="act", channel=0, position="all"), "guided_backprop")
    np.testing.assert_allclose(b.map[0], [[1, 0], [3, 0.5]], atol=1e-7)


class GuidedReLU(torch.autograd.Function):
    """The reference formulation: ReLU whose backward is rewritten by hand."""

    @staticmethod
    def forward(ctx, x, mode):
        ctx.save_for_backward(x)
        ctx.mode = mode
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.mode == "deconvnet":
            return g.clamp(min=0), None
        return g.clamp(min=0) * (x > 0).to(g.dtype), None


class ReluNet(nn.Module):
    """A small random ReLU CNN whose activation can be swapped for the reference one."""

    def __init__(self, reference_mode: str | None = None, functional: bool = False) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 5)
        self.relu = nn.ReLU(inplace=True)
        self.reference_mode = reference_mode
        self.functional = functional
        self.requires_grad_(False)

    def act(self, x: torch.Tensor) -> torch.Tensor:
        if self.reference_mode:
            return GuidedReLU.apply(x, self.reference_mode)
        return F.relu(x) if self.functional else self.relu(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.act(self.c1(x)), 2)
        x = F.max_pool2d(self.act(self.c2(x)), 2)
        x = self.act(self.c3(x))
        return self.fc(x.flatten(1))


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


class Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("boom")


class Exploding(nn.Module):
    def __init__(self, where: str) -> None:
        super().__init__()
        self.c = nn.Conv2d(1, 2, 1)
        self.r = nn.ReLU(inplace=True)
        self.boom = Boom()
        self.where = where

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.r(self.c(x)))
        return self.boom(h)


@pytest.mark.parametrize("method", ["deconvnet", "guided_backprop", "gradient", "gradcam"])
def test_no_hooks_remain_after_a_raise(method: str) -> None:
    model = Exploding("forward").eval().requires_grad_(False)
    target = Target(class_index=0) if method != "gradcam" else Target(layer="c")
    with pytest.raises(RuntimeError, match="boom"):
        attribute(model, X, target, method)
    assert active_hook_count(model) == 0 and function_mode_depth() == 0
    assert model.r.inplace is True  # switched off for the rewrite, restored after the raise
    # ... and the model still works afterwards, with plain ReLU semantics.
    out = model.r(torch.tensor([-1.0, 2.0]))
    assert out.tolist() == [0.0, 2.0]


def test_no_hooks_remain_after_a_raise_inside_the_block() -> None:
    model = TwoPath(nn.ReLU(inplace=True)).eval()
    with pytest.raises(ValueError), rewritten_rectifiers(model, "guided_backprop"):
        assert active_hook_count(model) > 0 and function_mode_depth() == 1
        raise ValueError
    assert active_hook_count(model) == 0 and function_mode_depth() == 0


def test_bad_targets_raise_clear_errors() -> None:
    model = TwoPath().eval()
    with pytest.raises(NotFoundError, match="layer 'nope'"):
        backprop_map(model, X, Target(layer="nope", channel=0), "deconvnet")
    with pytest.raises(InvalidInputError, match="out of range"):
        backprop_map(model, X, Target(layer="act", channel=2), "deconvnet")
    with pytest.raises(InvalidInputError, match="out of range"):
        backprop_map(model, X, Target(layer="act", neuron=8), "deconvnet")
    with pytest.raises(InvalidInputError, match="Class index 4"):
        backprop_map(model, X, Target(class_index=4), "gradient")
    with pytest.raises(InvalidInputError, match="Unknown method"):
        backprop_map(model, X, Target(class_index=0), "lrp")
    assert active_hook_count(model) == 0 and function_mode_depth() == 0


def test_top_k_filters_match_single_requests() -> None:
    torch.manual_seed(2)
    model = ReluNet().eval()
    x = torch.randn(1, 3, 16, 16)
    batch = backprop_top_filters(model, x, "c2", 3, "guided_backprop")
    assert len(batch) == 3
    values = [a.value for a in batch]
    assert values == sorted(values, reverse=True)
    for a in batch:
        single = backprop_map(model, x, a.target, "guided_backprop")
        np.testing.assert_allclose(a.map, single.map, atol=1e-6)
        assert a.position == single.position


def test_gradcam_hand_computed() -> None:
    # PoolNet: logit = 2 max(relu(x)) + 0.5 max(relu(-x)); at the conv layer the gradient is
    # 2 at (1, 0) in channel 0 and 0.5 at (0, 1) in channel 1 -> weights 2/4 and 0.5/4.
    model = PoolNet().eval()
    a = gradcam(model, X, "conv", class_index=0)
    conv = torch.tensor([[1.0, -2.0], [3.0, 0.5]])
    want = torch.relu(0.5 * conv + 0.125 * (-conv)).numpy()
    np.testing.assert_allclose(a.layer_map, want, atol=1e-6)
    assert a.map.shape == (2, 2) and a.class_index == 0
    assert active_hook_count(model) == 0


def test_lite0_relu6_maps_differ_from_gradient(lite0, chelsea_jpeg) -> None:
    import io

    from PIL import Image

    x, _ = lite0.preprocess(Image.open(io.BytesIO(chelsea_jpeg)).convert("RGB"))
    with lite0.lock:
        maps = {
            m: backprop_map(lite0.model, x, Target(layer="blocks.3", channel=7), m).map
            for m in ("gradient", "deconvnet", "guided_backprop")
        }
        cam = gradcam(lite0.model, x, "blocks.5")
    assert active_hook_count(lite0.model) == 0 and function_mode_depth() == 0
    for mode in ("deconvnet", "guided_backprop"):
        diff = np.abs(maps[mode] - maps["gradient"]).max() / np.abs(maps["gradient"]).max()
        assert diff > 0.1, mode
        corr = np.corrcoef(maps[mode].ravel(), maps["gradient"].ravel())[0, 1]
        assert corr < 0.99, mode
    assert cam.map.shape == (224, 224) and cam.map.max() > 0


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
