"""Grad-CAM against a hand computation."""

from __future__ import annotations

import numpy as np
import torch

from server.engine.attribution.gradcam import gradcam
from server.engine.hooks import active_hook_count
from tests.engine.attribution.nets import PoolNet, X


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
