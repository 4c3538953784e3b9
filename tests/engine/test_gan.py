"""The GAN engine on hand-made inputs: seeded latents, latent checks, interpolation, grids, mode report."""

import numpy as np
import pytest
import torch
from torch import nn

from server.engine.gan import (
    check_latents,
    generate_and_score,
    image_grid,
    interpolate_latents,
    mode_report,
    seeded_latents,
)
from server.errors import InvalidInputError


def test_seeded_latents_repeat_and_do_not_depend_on_n():
    a, b = seeded_latents(7, 4, 5), seeded_latents(7, 9, 5)
    assert a.shape == (4, 5)
    assert torch.equal(a, b[:4])
    assert not torch.equal(a, seeded_latents(8, 4, 5))


@pytest.mark.parametrize(
    ("latent", "match"),
    [
        ([[0.0] * 4], "5 numbers per vector"),
        ([[0.0] * 5, [0.0] * 4], "latent must"),
        ([], "5 numbers per vector"),
        ([[float("nan")] * 5], "finite"),
        ([[0.0] * 5] * 4, "between 1 and 3"),
    ],
)
def test_check_latents_refuses_what_it_cannot_use(latent, match):
    with pytest.raises(InvalidInputError, match=match):
        check_latents(latent, 5, 3)


def test_check_latents_accepts_one_vector_or_many():
    assert check_latents([1, 2, 3, 4, 5], 5, 3).shape == (1, 5)
    assert check_latents([[1, 2, 3, 4, 5]] * 3, 5, 3).shape == (3, 5)


def test_interpolation_has_both_ends_and_even_steps():
    a, b = torch.zeros(3), torch.tensor([2.0, 4.0, 6.0])
    line = interpolate_latents(a, b, 5)
    assert torch.equal(line[0], a) and torch.equal(line[-1], b)
    assert torch.allclose(line[2], torch.tensor([1.0, 2.0, 3.0]))
    with pytest.raises(InvalidInputError, match="at least 2"):
        interpolate_latents(a, b, 1)


class _Constant(nn.Module):
    """G: latent -> its first number as an 2x2 image; D: logits [0, mean pixel]."""

    def __init__(self, generator: bool) -> None:
        super().__init__()
        self.generator = generator
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        if self.generator:
            return torch.tanh(x[:, :1].expand(-1, 1, 2, 2) + self.p)
        logit = x.mean(dim=(1, 2, 3))[:, None]
        return torch.cat([torch.zeros_like(logit), logit], 1)


def test_generate_and_score_maps_tanh_to_unit_range_and_scores_real():
    z = torch.tensor([[0.0, 1.0], [100.0, 0.0], [-100.0, 0.0]])
    out = generate_and_score(_Constant(True), _Constant(False), z)
    assert out.images.shape == (3, 1, 2, 2)
    np.testing.assert_allclose(out.images[:, 0, 0, 0], [0.5, 1.0, 0.0], atol=1e-6)
    # D's score is sigmoid(mean of the tanh image): 0.5, sigmoid(1), sigmoid(-1)
    np.testing.assert_allclose(out.scores, [0.5, 1 / (1 + np.exp(-1)), 1 / (1 + np.exp(1))], atol=1e-6)


def test_image_grid_places_each_image_with_a_frame():
    images = np.stack([np.full((1, 2, 3), v) for v in (0.0, 0.5, 1.0)])
    grid = image_grid(images, cols=3, pad=1)
    assert grid.shape == (4, 13) and grid.dtype == np.uint8
    assert grid[1, 1] == 0 and grid[1, 5] == 128 and grid[1, 9] == 255
    assert (grid[0] == 255).all()  # the frame


def test_mode_report_counts_top1_and_warns_on_missing_classes():
    probs = np.zeros((100, 3))
    probs[:60, 0] = 0.9
    probs[:60, 1] = 0.1
    probs[60:, 1] = 0.7
    probs[60:, 2] = 0.3
    report = mode_report(probs, ("a", "b", "c"))
    assert report.histogram == [60, 40, 0]
    assert report.missing == [2]
    assert report.mean_confidence == pytest.approx(0.6 * 0.9 + 0.4 * 0.7)
    assert report.confidence_per_class[0] == pytest.approx(0.9) and report.confidence_per_class[2] is None
    assert report.warning is not None and "c" in report.warning and "1 of 3" in report.warning


def test_mode_report_without_collapse_has_no_warning():
    probs = np.eye(4)[np.arange(100) % 4]
    report = mode_report(probs, ("a", "b", "c", "d"))
    assert report.missing == [] and report.warning is None and report.histogram == [25] * 4
