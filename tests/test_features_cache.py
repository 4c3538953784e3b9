"""Features of (model, layer, dataset) are cached on disk under the dataset and keyed by what they depend on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from server.datasets.store import DatasetStore
from server.engine.features import extract_features, image_batches
from server.features_cache import FeatureCache
from tests.datasets.test_store import png


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    s = DatasetStore(tmp_path / "datasets", tmp_path / "cache")
    s.create_from_files("tiny", [(f"{i}.png", png(i * 20, size=8)) for i in range(12)], labels=["a", "b"] * 6)
    return s


def test_features_are_extracted_once_then_read_from_disk(store: DatasetStore, digits_model) -> None:
    cache = FeatureCache(store, batch_size=5)
    progress: list[float] = []
    first = cache.features(
        digits_model, "features.3", "tiny", "mean", progress=lambda p, _m: progress.append(p)
    )
    assert not first.from_cache and first.features.shape == (12, 32)
    assert progress[-1] == 1.0 and len(progress) >= 3
    direct = extract_features(
        digits_model.model,
        "features.3",
        image_batches((im for _, im in store.iter_images("tiny")), digits_model.prep),
    )
    np.testing.assert_allclose(first.features, direct, rtol=1e-5)
    again = FeatureCache(store).features(digits_model, "features.3", "tiny", "mean")  # a fresh process
    assert again.from_cache
    np.testing.assert_array_equal(again.features, first.features)
    assert again.labels.tolist() == [0, 1] * 6 and again.classes == ("a", "b")


def test_key_depends_on_layer_pooling_reduction_and_content(store: DatasetStore, digits_model) -> None:
    cache = FeatureCache(store)
    keys = {
        cache.features(digits_model, "features.3", "tiny", "mean").key,
        cache.features(digits_model, "features.3", "tiny", "max").key,
        cache.features(digits_model, "features.5", "tiny", "mean").key,
        cache.features(digits_model, "features.3", "tiny", "mean", reduce=4).key,
    }
    assert len(keys) == 4
    store.create_from_files("tiny2", [(f"{i}.png", png(i * 20 + 1, size=8)) for i in range(12)])
    assert cache.features(digits_model, "features.3", "tiny2", "mean").key not in keys
    preds = cache.predictions(digits_model, "tiny")
    assert preds.shape == (12,) and preds.max() < 10


def test_deleting_the_dataset_deletes_its_features(store: DatasetStore, digits_model) -> None:
    cache = FeatureCache(store)
    feats = cache.features(digits_model, "features.3", "tiny", "mean", with_predictions=True)
    assert cache.path("tiny", feats.key).is_file()
    store.delete("tiny")
    assert not cache.path("tiny", feats.key).exists()
    assert not store.cache_dir("tiny").exists()


def test_layer_features_of_a_spread_are_extracted_together_and_keyed_apart(
    store: DatasetStore, digits_model, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = FeatureCache(store, batch_size=4)
    feats, indices = cache.layer_features(digits_model, ["features.3", "features.5"], "tiny", max_images=4)
    assert indices == [0, 4, 7, 11]
    assert feats["features.3"].shape == (4, 32) and feats["features.5"].shape == (4, 64)
    whole = cache.features(digits_model, "features.3", "tiny").features
    np.testing.assert_allclose(feats["features.3"], whole[indices], rtol=1e-5)
    everything, all_indices = cache.layer_features(digits_model, ["features.3"], "tiny")
    assert all_indices == list(range(12))  # the whole dataset: the key `features` uses, read back
    np.testing.assert_array_equal(everything["features.3"], whole)
    fresh = FeatureCache(store)  # another process: the spread is read from disk, not extracted
    monkeypatch.setattr("server.features_cache.extract_layers", lambda *a, **k: pytest.fail("extracted"))
    again, _ = fresh.layer_features(digits_model, ["features.5"], "tiny", max_images=4)
    np.testing.assert_array_equal(again["features.5"], feats["features.5"])
