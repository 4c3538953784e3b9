"""render_batch: many filters in one optimisation batch, each image its own filter's, with render's numbers
for a batch of one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from server.engine.hooks import active_hook_count
from server.engine.optvis import channel, channels, preset_config, render, render_batch
from server.errors import InvalidInputError

LAYER = "features.3"


def _kw(lm):
    card = lm.card
    return {"input_size": card.input_size, "mean": card.mean, "std": card.std}


@pytest.mark.parametrize("preset", ["deepvis", "lucid"])
def test_a_batch_of_one_is_render(digits_model, preset):
    cfg = preset_config(preset, (8, 8), steps=6, seed=3)
    one = render(digits_model.model, channel(LAYER, 5), cfg, **_kw(digits_model))
    batch = render_batch(digits_model.model, channels(LAYER, [5]), 1, cfg, **_kw(digits_model))
    np.testing.assert_allclose(batch.images[0], one.image, atol=1e-6)
    assert batch.final_values[0] == pytest.approx(one.final_value, abs=1e-5)
    assert batch.start_values[0] == pytest.approx(one.start_value, abs=1e-5)


@pytest.mark.parametrize("preset", ["deepvis", "lucid"])
def test_images_of_a_batch_do_not_mix(digits_model, preset):
    # image 0 starts from the same noise and sees the same transforms in both batches: only its own
    # filter may shape it (per-image regularisers, per-image gradients)
    cfg = preset_config(preset, (8, 8), steps=6, seed=0)
    a = render_batch(digits_model.model, channels(LAYER, [5, 7, 9]), 3, cfg, **_kw(digits_model))
    b = render_batch(digits_model.model, channels(LAYER, [5, 20, 1]), 3, cfg, **_kw(digits_model))
    np.testing.assert_allclose(a.images[0], b.images[0], atol=1e-6)
    assert not np.allclose(a.images[1], b.images[1])
    assert a.images.shape == (3, 8, 8, 1) and a.images.min() >= 0 and a.images.max() <= 1
    assert all(f > s for f, s in zip(a.final_values, a.start_values, strict=True))
    assert active_hook_count(digits_model.model) == 0


def test_bad_batches_are_refused(digits_model):
    cfg = preset_config("deepvis", (8, 8), steps=2)
    with pytest.raises(InvalidInputError, match="batch of 2"):
        render_batch(digits_model.model, channels(LAYER, [1, 2]), 3, cfg, **_kw(digits_model))
    with pytest.raises(InvalidInputError, match="Channel 32"):
        render_batch(digits_model.model, channels(LAYER, [32]), 1, cfg, **_kw(digits_model))
    with pytest.raises(InvalidInputError, match="batch"):
        render_batch(digits_model.model, channels(LAYER, []), 0, cfg, **_kw(digits_model))
    assert active_hook_count(digits_model.model) == 0
    assert torch.is_grad_enabled()
