"""Deconvnet / guided backprop / gradient maps: hand-computed maps, targets, top-k, cleanup."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from server.engine.attribution import attribute
from server.engine.attribution.backprop import Target, backprop_map, backprop_top_filters
from server.engine.attribution.gradcam import gradcam
from server.engine.hooks import active_hook_count
from server.errors import InvalidInputError, NotFoundError
from tests.engine.attribution.nets import PoolNet, ReluNet, TwoPath, X, function_mode_depth


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
