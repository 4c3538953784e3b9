"""k-NN purity, confused pairs and trustworthiness on hand-made layouts with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from server.engine.purity import confused_pairs, knn_purity, purity_report, trustworthiness


def test_purity_on_a_hand_made_line() -> None:
    # Points on a line: class 0 at 0,1,2; class 1 at 10,11; class 2 at 12 (next to class 1).
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    labels = np.array([0, 0, 0, 1, 1, 2])
    p = knn_purity(x, labels, ["a", "b", "c"], k=1)
    # 1-NN: 0->1, 1->0 or 2, 2->1 (pure); 10->11 (pure); 11->10 or 12; 12->11 (impure)
    assert p.per_class["a"] == 1.0 and p.per_class["c"] == 0.0
    assert p.per_class["b"] in (0.5, 1.0)
    p2 = knn_purity(x, labels, ["a", "b", "c"], k=2)
    assert p2.per_class == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert p2.overall == pytest.approx((1 + 1 + 1 + 0.5 + 0.5 + 0) / 6)
    pairs = confused_pairs(p2, ["a", "b", "c"])
    assert (pairs[0]["a"], pairs[0]["b"]) == ("b", "c") and pairs[0]["neighbours"] == 4
    assert all({p["a"], p["b"]} != {"a", "b"} for p in pairs)


def test_duplicate_points_do_not_count_themselves() -> None:
    x = np.zeros((4, 2))
    x[2:] = 5.0
    p = knn_purity(x, np.array([0, 1, 1, 1]), ["a", "b"], k=1)
    assert p.per_class["a"] == 0.0  # its only twin is of class b


def test_trustworthiness_is_one_for_an_isometry_and_lower_for_a_shuffle() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    rot = x @ np.array([[0.0, -1.0], [1.0, 0.0]])
    assert trustworthiness(x, rot, k=5) == pytest.approx(1.0)
    assert trustworthiness(x, rng.permutation(x), k=5) < 0.7
    assert trustworthiness(x, rot, k=5, max_points=50) == pytest.approx(1.0)


def test_report_has_both_spaces() -> None:
    rng = np.random.default_rng(0)
    feats = np.r_[rng.normal(size=(20, 5)), rng.normal(size=(20, 5)) + 8]
    labels = np.repeat([0, 1], 20)
    report = purity_report(feats, feats[:, :2], labels, ["x", "y"], k=5)
    assert report["features"]["overall"] == 1.0 and report["embedding"]["overall"] == 1.0
    assert report["trustworthiness"] > 0.8 and report["confused_pairs"] == []


@pytest.mark.slow
def test_digits_cnn_penultimate_layer_is_purer_than_raw_pixels(tmp_path, digits_model) -> None:
    """Must-show: 10-NN purity of a t-SNE of digits_cnn's penultimate layer >= 0.95 and above raw pixels."""
    from server.datasets.store import DatasetStore
    from server.engine.projection import project
    from server.features_cache import FeatureCache

    store = DatasetStore(tmp_path / "datasets", tmp_path / "cache")
    feats = FeatureCache(store).features(digits_model, "classifier.2", "digits", "mean")
    pixels = np.stack(
        [np.asarray(img.convert("L"), dtype=np.float32).ravel() for _, img in store.iter_images("digits")]
    )
    assert feats.features.shape == (1797, 128) and pixels.shape == (1797, 64)
    cnn = project(feats.features, "tsne", {"perplexity": 30, "seed": 0})
    raw = project(pixels, "tsne", {"perplexity": 30, "seed": 0})
    cnn_purity = knn_purity(cnn.coords, feats.labels, feats.classes, k=10)
    raw_purity = knn_purity(raw.coords, feats.labels, feats.classes, k=10)
    assert cnn_purity.overall >= 0.95
    assert cnn_purity.overall > raw_purity.overall
