"""Where each layer's units are judged."""

from __future__ import annotations

import torch
from torch import nn

from server.engine.audit.response import response_points
from server.engine.hooks import active_hook_count


def test_response_points_skip_norms_and_find_the_activation():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 1),
        nn.Flatten(),
        nn.LazyLinear(3),
        nn.Sigmoid(),
    )
    model(torch.zeros(1, 1, 6, 6))
    model.eval()
    points = response_points(model, torch.zeros(1, 1, 6, 6))
    assert (points["0"].module, points["0"].rectified) == ("2", True)
    assert (points["3"].module, points["3"].activation) == ("3", None)
    assert (points["5"].module, points["5"].saturating) == ("6", "unit")
    assert active_hook_count(model) == 0
