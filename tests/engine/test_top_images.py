"""Top-9: strongest images of a filter (against a brute-force scan) and the deconvolution crop box."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from server.engine.hooks import active_hook_count, forward_until
from server.engine.top_images import strongest_images, support_box
from server.errors import InvalidInputError


def test_support_box() -> None:
    m = np.zeros((3, 10, 12), np.float32)
    m[1, 4, 5] = 1.0
    m[0, 6, 8] = -0.5
    m[2, 0, 0] = 0.01  # below 5 % of the peak: outside the box
    assert support_box(m, pad=0) == (4, 5, 7, 9)
    assert support_box(m, pad=1) == (3, 4, 8, 10)
    assert support_box(np.zeros((4, 4))) == (0, 0, 4, 4)


def test_strongest_images_match_a_brute_force_scan(digits_model) -> None:
    torch.manual_seed(0)
    images = torch.rand(50, 1, 8, 8)
    batches = [images[i : i + 16] for i in range(0, 50, 16)]
    with digits_model.lock:
        got = strongest_images(digits_model.model, "features.3", 7, batches, k=9)
        acts = forward_until(digits_model.model, ["features.3"], digits_model.to_input(images))["features.3"]
    peaks = acts[:, 7].flatten(1).amax(1).numpy()
    want = np.argsort(-peaks, kind="stable")[:9]
    assert [g.index for g in got] == want.tolist()
    np.testing.assert_allclose([g.value for g in got], peaks[want], rtol=1e-5)
    with pytest.raises(InvalidInputError, match="Channel 64"):
        strongest_images(digits_model.model, "features.3", 64, batches)
    assert active_hook_count(digits_model.model) == 0


def test_strongest_per_channel_answers_every_filter_from_one_peaks_matrix() -> None:
    from server.engine.top_images import strongest_per_channel

    peaks = np.array([[1.0, 5.0], [3.0, 4.0], [2.0, 6.0]], np.float32)
    got = strongest_per_channel(peaks, [0, 1], k=2)
    assert [s.index for s in got[0]] == [1, 2] and [s.index for s in got[1]] == [2, 0]
    assert got[1][0].value == pytest.approx(6.0)
    with pytest.raises(InvalidInputError, match="Channel 2"):
        strongest_per_channel(peaks, [2])
    with pytest.raises(InvalidInputError, match="k must"):
        strongest_per_channel(peaks, [0], k=0)
