"""Feature extraction on a tiny model with hand-set weights: exact pooled values, early stop, cleanup."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from server.engine.features import (
    check_features,
    even_spread,
    extract,
    extract_features,
    extract_layers,
    image_batches,
    pool_activation,
    reduce_features,
)
from server.engine.hooks import active_hook_count
from server.engine.imaging import Preprocessing
from server.errors import InvalidInputError, NotFoundError


class Boom(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the forward went past the requested layer")


def tiny(tail: nn.Module | None = None) -> nn.Sequential:
    """conv (1->2, 1x1): channel 0 = x, channel 1 = -x; an in-place ReLU; a head."""
    conv = nn.Conv2d(1, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).reshape(2, 1, 1, 1))
    head = nn.Sequential(nn.Flatten(), nn.Linear(2 * 2 * 2, 3))
    with torch.no_grad():
        head[1].weight.zero_()
        head[1].weight[2, 0] = 1.0  # class 2 wins when the first pixel is positive
        head[1].bias.copy_(torch.tensor([0.5, 0.0, 0.0]))
    return nn.Sequential(conv, nn.ReLU(inplace=True), tail or nn.Identity(), head).eval()


X = torch.tensor([[[[1.0, -2.0], [3.0, 4.0]]], [[[-1.0, 0.0], [0.0, 0.0]]]])  # (2, 1, 2, 2)


def test_mean_max_flatten_match_hand_computed_values() -> None:
    model = tiny()
    mean = extract_features(model, "0", [X[:1], X[1:]], "mean")
    np.testing.assert_allclose(mean, [[1.5, -1.5], [-0.25, 0.25]])
    mx = extract_features(model, "0", [X], "max")
    np.testing.assert_allclose(mx, [[4.0, 2.0], [0.0, 1.0]])
    flat = extract_features(model, "0", [X], "flatten")
    np.testing.assert_allclose(flat[0], [1, -2, 3, 4, -1, 2, -3, -4])


def test_in_place_relu_after_the_layer_does_not_change_features() -> None:
    model = tiny()
    after_relu = extract_features(model, "1", [X], "mean")
    before = extract_features(model, "0", [X], "mean")
    assert before.min() < 0  # the conv output's negatives survived the in-place ReLU
    np.testing.assert_allclose(after_relu, [[2.0, 0.5], [0.0, 0.25]])


def test_forward_stops_after_the_layer_unless_predictions_are_wanted() -> None:
    model = tiny(tail=Boom())
    feats = extract_features(model, "0", [X], "mean")  # Boom is never reached
    assert feats.shape == (2, 2)
    assert active_hook_count(model) == 0
    with pytest.raises(RuntimeError, match="past the requested layer"):
        extract(model, "0", [X], "mean", with_predictions=True)
    assert active_hook_count(model) == 0  # removed although the forward raised


def test_predictions_come_with_the_features() -> None:
    result = extract(tiny(), "3", [X], "mean", with_predictions=True)
    assert result.predictions is not None
    assert result.predictions.tolist() == [2, 0]
    assert result.features.shape == (2, 3)  # a linear output is kept as it is


def test_progress_reports_images_done() -> None:
    seen: list[tuple[int, int | None]] = []
    extract_features(tiny(), "0", [X[:1], X[1:]], progress=lambda d, t: seen.append((d, t)), total=2)
    assert seen == [(1, 2), (2, 2)]


def test_bad_layer_and_pooling_are_clear_errors() -> None:
    model = tiny()
    with pytest.raises(NotFoundError, match="Did you mean"):
        extract_features(model, "conv9", [X])
    with pytest.raises(InvalidInputError, match="pooling"):
        extract_features(model, "0", [X], "median")
    with pytest.raises(InvalidInputError, match="No images"):
        extract_features(model, "0", [])
    with pytest.raises(InvalidInputError):
        pool_activation(torch.zeros(1, 2, 3), "sum")
    assert active_hook_count(model) == 0


def test_image_batches_preprocess_pil_images() -> None:
    from PIL import Image

    prep = Preprocessing(input_size=(1, 8, 8), mean=(0.0,), std=(1.0,), crop_pct=1.0, interpolation="box")
    imgs = [Image.new("RGB", (8, 8), (v, v, v)) for v in (0, 255, 51)]
    batches = list(image_batches(imgs, prep, batch_size=2))
    assert [b.shape for b in batches] == [(2, 1, 8, 8), (1, 1, 8, 8)]
    assert float(batches[0][1].mean()) == pytest.approx(1.0) and float(batches[1].mean()) == pytest.approx(
        0.2
    )


def test_reduce_features_keeps_variance_order() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 10)) * np.arange(10, 0, -1)
    r = reduce_features(x, 3)
    assert r.shape == (50, 3) and r.dtype == np.float32
    assert np.var(r[:, 0]) > np.var(r[:, 2])
    assert reduce_features(x, 20).shape == (50, 10)


def test_check_features_refuses_what_cannot_be_projected() -> None:
    ok = np.random.default_rng(0).normal(size=(6, 3))
    assert check_features(ok) is not None
    with pytest.raises(InvalidInputError, match="at least 5 points"):
        check_features(ok[:4])
    bad = ok.copy()
    bad[2, 1] = np.nan
    with pytest.raises(InvalidInputError, match="NaN"):
        check_features(bad)
    with pytest.raises(InvalidInputError, match="constant"):
        check_features(np.ones((10, 4)))


def test_a_concurrent_forward_on_the_same_model_is_neither_stopped_nor_recorded() -> None:
    import threading

    model = tiny()
    other: dict[str, torch.Tensor] = {}

    def batches():
        worker = threading.Thread(target=lambda: other.setdefault("out", model(X)))
        worker.start()  # runs while the extraction's hook is on the model, before our first forward
        worker.join()
        yield X[:1]
        yield X[1:]

    feats = extract_features(model, "0", batches(), "mean")
    np.testing.assert_allclose(feats, [[1.5, -1.5], [-0.25, 0.25]])  # only our two images
    assert other["out"].shape == (2, 3)  # the other thread's forward ran to the end
    assert active_hook_count(model) == 0


def test_extract_layers_gives_each_layers_features_in_one_pass_and_leaves_no_hooks() -> None:
    model = tiny(Boom())  # the forward may not go past the last layer asked for
    feats, preds = extract_layers(model, ["0", "1"], [X[:1], X[1:]], "max")
    assert preds is None
    np.testing.assert_array_equal(feats["0"], extract(tiny(), "0", [X], "max").features)
    np.testing.assert_array_equal(feats["1"], [[4.0, 2.0], [0.0, 1.0]])
    assert active_hook_count(model) == 0
    with pytest.raises(InvalidInputError, match="at least one layer"):
        extract_layers(model, [], [X])


def test_even_spread_takes_the_ends_and_everything_when_asked_for_more() -> None:
    assert even_spread(10, 4) == [0, 3, 6, 9]
    assert even_spread(5, None) == even_spread(5, 9) == [0, 1, 2, 3, 4]
    assert even_spread(1797, 64)[-1] == 1796 and len(even_spread(1797, 64)) == 64
