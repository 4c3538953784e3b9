"""filter_maps: a batch of images, each with its own filter, in one forward and backward gives each image
the map backprop_map gives it alone."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from server.engine.attribution import Target, backprop_map, filter_maps
from server.engine.hooks import active_hook_count
from server.errors import InvalidInputError


@pytest.mark.parametrize("method", ["deconvnet", "guided_backprop", "gradient"])
def test_each_image_gets_its_own_filters_map(digits_model, method):
    torch.manual_seed(0)
    x = torch.rand(4, 1, 8, 8)
    chans = [3, 3, 17, 30]
    maps = filter_maps(digits_model.model, x, "features.3", chans, method)
    for i, (c, m) in enumerate(zip(chans, maps, strict=True)):
        alone = backprop_map(
            digits_model.model, x[i : i + 1], Target("features.3", c, position="max"), method
        )
        np.testing.assert_allclose(m.map, alone.map, rtol=1e-5, atol=1e-6)
        assert m.position == alone.position and m.value == pytest.approx(alone.value)
    assert active_hook_count(digits_model.model) == 0


def test_bad_input_is_refused(digits_model):
    x = torch.rand(2, 1, 8, 8)
    with pytest.raises(InvalidInputError, match="one image per filter"):
        filter_maps(digits_model.model, x, "features.3", [1])
    with pytest.raises(InvalidInputError, match="Channel 40"):
        filter_maps(digits_model.model, x, "features.3", [1, 40])
    with pytest.raises(InvalidInputError, match="method"):
        filter_maps(digits_model.model, x, "features.3", [1, 2], "gradcam")
    assert active_hook_count(digits_model.model) == 0
