"""Checkerboard artifacts: flagged from the architecture (Odena et al. 2016), measured on real digits."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from server.engine.audit.checkerboard import architecture_flags, chance_share, lattice_share, reference_layer
from server.engine.audit.run import audit_model
from server.engine.hooks import active_hook_count
from tests.audit_models import digits_inputs


def upsampler(kernel: int) -> nn.Module:
    """Seeded stride-1 conv -> ReLU -> a planted transposed conv (stride 2, uniform weights) -> ReLU -> conv."""
    torch.manual_seed(0)
    padding, output_padding = (1, 1) if kernel == 3 else (1, 0)  # both double 8x8 to 16x16
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.ConvTranspose2d(4, 2, kernel, stride=2, padding=padding, output_padding=output_padding),
        nn.ReLU(),
        nn.Conv2d(2, 2, 3, padding=1),
    )
    with torch.no_grad():
        model[2].weight.fill_(1.0 / (kernel * kernel * 4))
        model[2].bias.zero_()
    return model.eval()


def downsampler(kernel: int) -> nn.Module:
    """Seeded stride-1 conv -> ReLU -> a planted strided conv (stride 2, uniform weights) -> ReLU."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, kernel, stride=2, padding=1), nn.ReLU()
    )
    with torch.no_grad():
        model[2].weight.fill_(1.0 / (kernel * kernel * 4))
        model[2].bias.zero_()
    return model.eval()


@pytest.fixture(scope="module")
def digits():
    x, y = digits_inputs()
    return x[:200], y[:200]


def board(model, digits):
    x, y = digits
    result = audit_model(model, [(x[:100], y[:100]), (x[100:], y[100:])], checkerboard_images=150)
    assert active_hook_count(model) == 0
    return result.to_dict()["checkerboard"]


def test_a_planted_transposed_conv_k3_s2_is_flagged_and_scores_higher_than_k4_s2(digits):
    k3, k4 = board(upsampler(3), digits), board(upsampler(4), digits)
    assert k3["flagged"] == ["2"] and k4["flagged"] == []
    (l3,), (l4,) = k3["layers"], k4["layers"]
    assert l3["kind"] == "transposed" and "not divisible" in l3["reason"]
    assert l3["images"] == l4["images"] == 150  # averaged over the first 150 images, across batches
    assert l3["score"] > 5 * l4["score"]
    # against the layer without stride: well above it for k3, not for k4
    assert k3["reference_layer"] == "0" and l3["reference_score"] == l4["reference_score"]
    assert l3["ratio"] > 3 > 1 > l4["ratio"]
    assert l3["score"] > 10 * l3["chance"]
    worst = [w["share"] for w in l3["worst"]]
    assert len(worst) == 3 and worst == sorted(worst, reverse=True) and worst[-1] >= l3["score"]


def test_the_deconvnet_map_of_a_strided_conv_shows_the_uneven_overlap(digits):
    k3, k4 = board(downsampler(3), digits), board(downsampler(4), digits)
    (l3,), (l4,) = k3["layers"], k4["layers"]
    assert l3["flagged"] and not l4["flagged"] and l3["kind"] == "conv"
    assert l3["score"] > 3 * l4["score"]
    assert l3["ratio"] > 1


def test_architecture_flags_strided_convs_transposed_convs_and_pools_by_kernel_and_stride():
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2),  # flagged
        nn.Conv2d(4, 4, 4, stride=2),  # even overlap
        nn.Conv2d(4, 4, 3),  # no stride: not listed
        nn.MaxPool2d(3, 2),  # flagged (AlexNet's overlapping pooling)
        nn.MaxPool2d(2),  # stride defaults to the kernel: even
        nn.ConvTranspose2d(4, 4, (3, 4), stride=2),  # flagged along one axis
        nn.AvgPool1d(3, 2),
    )
    flags = {f.layer: f for f in architecture_flags(model)}
    assert list(flags) == ["0", "1", "3", "4", "5", "6"]
    assert {n for n, f in flags.items() if f.flagged} == {"0", "3", "5", "6"}
    assert flags["4"].stride == (2, 2) and flags["6"].kind == "pool" and flags["5"].kind == "transposed"
    assert reference_layer(model) == "2"


def test_lattice_share_is_one_for_a_periodic_pattern_and_chance_for_noise():
    tile = torch.tensor([[4.0, 2.0], [2.0, 1.0]])
    pattern = tile.repeat(8, 8)[None, None]  # period 2 in both axes
    assert lattice_share(pattern, (2, 2))[0] == pytest.approx(1.0)
    smooth = torch.cos(2 * torch.pi * torch.arange(16) / 16).repeat(16, 1)[None, None]  # period 16
    assert lattice_share(smooth, (2, 2))[0] < 1e-6
    noise = torch.randn(200, 1, 16, 16, generator=torch.Generator().manual_seed(0))
    assert float(np.mean(lattice_share(noise, (2, 2)))) == pytest.approx(
        chance_share((16, 16), (2, 2)), rel=0.15
    )
