"""Sparsity of a layer's response: share at the floor and Hoyer's measure, against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from server.engine.audit.run import audit_model
from server.engine.audit.sparsity import hoyer, hoyer_of


def hand_set_model() -> nn.Module:
    """Conv 1x1 with weights +1 and -1 (no bias) -> ReLU -> flatten -> Linear with rows of 0s and 1s."""
    model = nn.Sequential(
        nn.Conv2d(1, 2, 1, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(8, 2, bias=False)
    )
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
        model[3].weight.copy_(torch.stack([torch.zeros(8), torch.ones(8)]))
    return model.eval()


# two 2x2 images: [[1, -2], [0, 3]] and all ones
IMAGES = torch.tensor([[[[1.0, -2.0], [0.0, 3.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])


def test_sparsity_of_a_hand_set_model_equals_hand_computed_values():
    result = audit_model(hand_set_model(), [(IMAGES, None)]).to_dict()
    conv, linear = result["layers"]
    # conv filter 0 after ReLU: [1, 0, 0, 3] and [1, 1, 1, 1]: 2 of 8 at 0; L1 8, L2 sqrt(14)
    # conv filter 1 after ReLU: [0, 2, 0, 0] and [0, 0, 0, 0]: 7 of 8 at 0; one non-zero -> Hoyer 1
    assert conv["sparsity"]["floor"] == "<= 0"
    assert conv["sparsity"]["filters"]["zero_share"] == [0.25, 0.875]
    h0 = (math.sqrt(8) - 8 / math.sqrt(14)) / (math.sqrt(8) - 1)  # 0.37756
    assert conv["sparsity"]["filters"]["hoyer"] == pytest.approx([h0, 1.0], abs=1e-5)
    # the whole layer: 16 activations, 9 at 0, L1 10, L2 sqrt(18)
    assert conv["sparsity"]["zero_share"] == pytest.approx(9 / 16)
    assert conv["sparsity"]["hoyer"] == pytest.approx((4 - 10 / math.sqrt(18)) / 3, abs=1e-5)
    # linear (no activation: only exact zeros count): unit 0 is [0, 0], unit 1 sums the ReLU maps: [6, 4]
    assert linear["sparsity"]["floor"] == "== 0"
    assert linear["sparsity"]["filters"]["zero_share"] == [1.0, 0.0]
    h1 = (math.sqrt(2) - 10 / math.sqrt(52)) / (math.sqrt(2) - 1)  # 0.06630
    assert linear["sparsity"]["filters"]["hoyer"] == pytest.approx([1.0, h1], abs=1e-5)
    curve = result["sparsity"]
    assert curve["layers"] == ["0", "3"]
    assert curve["zero_share"] == pytest.approx([9 / 16, 0.5])
    assert curve["hoyer"][0] == pytest.approx(conv["sparsity"]["hoyer"])


def test_streamed_sums_equal_one_pass_over_every_activation():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 5, 3, padding=1), nn.ReLU6()).eval()
    x = torch.randn(12, 3, 9, 9)
    whole = audit_model(model, [(x, None)]).to_dict()["layers"][0]["sparsity"]
    split = audit_model(model, [(x[:5], None), (x[5:], None)]).to_dict()["layers"][0]["sparsity"]
    with torch.no_grad():
        out = model(x)
    expected = [hoyer_of(out[:, c]) for c in range(5)]
    assert whole["filters"]["hoyer"] == pytest.approx(expected, abs=1e-5)
    assert split["filters"] == whole["filters"]
    assert whole["filters"]["zero_share"] == pytest.approx(
        (out <= 0).double().mean((0, 2, 3)).tolist(), abs=1e-5
    )
    assert whole["hoyer"] == pytest.approx(hoyer_of(out), abs=1e-5)


def test_hoyer_ends():
    assert hoyer_of(np.ones(10)) == pytest.approx(0.0)
    assert hoyer_of(np.eye(1, 10)) == pytest.approx(1.0)
    assert hoyer_of(np.zeros(10)) == 1.0  # a dead filter: the limit of ever fewer non-zero values
    assert hoyer(np.array([3.0]), np.array([9.0]), 1).tolist() == [0.0]  # one value has no sparsity


def test_the_trained_digits_model_gets_sparser_than_its_dense_output(digits_result):
    curve = digits_result.to_dict()["sparsity"]
    assert len(curve["layers"]) == len(digits_result.layers)
    rectified = [la for la in digits_result.layers if la.rectified]
    assert rectified and all(0 < la.sparsity["zero_share"] < 1 for la in rectified)
    logits = digits_result.layers[-1]
    assert not logits.rectified and logits.sparsity["zero_share"] == 0.0
