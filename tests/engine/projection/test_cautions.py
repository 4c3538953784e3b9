"""t-SNE cautions measured: stability over seeds, noise baseline, distance faithfulness, perplexity."""

from __future__ import annotations

import numpy as np
import pytest

from server.engine.projection.cautions import (
    chance_purity,
    check_seeds,
    check_sweep,
    distance_faithfulness,
    hopkins,
    neighbour_jaccard,
    noise_baseline,
    noise_like,
    perplexity_guidance,
    perplexity_sweep,
    procrustes_align,
    seed_runs,
    stability,
)
from server.engine.projection.params import validate_params
from server.errors import InvalidInputError
from tests.engine.projection.data import FAST, blobs


def test_procrustes_undoes_rotation_reflection_scale_and_shift() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(50, 2))
    angle = 1.1
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    moved = 3.5 * (ref @ rot) @ np.diag([1.0, -1.0]) + [10.0, -4.0]
    np.testing.assert_allclose(procrustes_align(ref, moved), ref, atol=1e-9)
    shuffled = rng.permutation(ref)
    assert np.abs(procrustes_align(ref, shuffled) - ref).mean() > 0.3  # no fit from a shuffle


def test_neighbour_jaccard_by_hand() -> None:
    # Four points on a line, k = 1: A's nearest neighbours 0->1, 1->0, 2->3, 3->2.
    a = np.array([[0.0, 0], [1, 0], [5, 0], [6, 0]])
    # B moves point 2 next to point 1: 0->1, 1->2 (0.5 away), 2->1, 3->2.
    b = np.array([[0.0, 0], [1, 0], [1.5, 0], [6, 0]])
    per_point = neighbour_jaccard([a, b], k=1)
    np.testing.assert_allclose(per_point, [1.0, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(neighbour_jaccard([a, a, a], k=2), 1.0)
    # k = 2, A: 0->{1,2}, B: 0->{1,2}; 1: A {0,2}, B {2,0}; 2: A {3,1}, B {1,0} -> 1/3; 3: A {2,1}, B {2,1}
    np.testing.assert_allclose(neighbour_jaccard([a, b], k=2), [1.0, 1.0, 1 / 3, 1.0])


def test_hopkins_is_a_half_for_uniform_points_and_near_one_for_clumps() -> None:
    rng = np.random.default_rng(1)
    uniform = rng.uniform(size=(2000, 2))
    clumps = np.concatenate([c + 0.01 * rng.normal(size=(200, 2)) for c in rng.uniform(size=(10, 2))])
    assert hopkins(uniform) == pytest.approx(0.5, abs=0.05)
    assert hopkins(clumps) > 0.9


def test_chance_purity_and_noise_like() -> None:
    labels = np.array([0, 0, 1, 1])  # a neighbour has the point's label with probability 1/3
    assert chance_purity(labels) == pytest.approx(1 / 3)
    x, _ = blobs()
    noise = noise_like(x, seed=3)
    assert noise.shape == x.shape
    np.testing.assert_allclose(noise.mean(0), x.mean(0), atol=4 * x.std(0).max() / np.sqrt(len(x)))


def test_distance_faithfulness_high_for_a_faithful_layout_and_low_for_a_shuffled_one() -> None:
    rng = np.random.default_rng(0)
    centres = rng.normal(scale=10, size=(6, 2))
    labels = np.repeat(np.arange(6), 20)
    feats = np.c_[centres[labels] + rng.normal(size=(120, 2)), rng.normal(size=(120, 3))]
    good = distance_faithfulness(feats, feats[:, :2] * 2, labels)
    assert good["spearman"] > 0.9 and good["pairs"] == 15
    assert good["sentence"].startswith("Cluster distances roughly follow")
    # The same clusters, but each class placed at another class's centre: distances scrambled
    scrambled = centres[[3, 5, 0, 4, 1, 2]][labels] + rng.normal(size=(120, 2))
    bad = distance_faithfulness(feats, scrambled, labels)
    assert bad["spearman"] < good["spearman"] - 0.5
    assert "not meaningful here" in bad["sentence"] or "only partly" in bad["sentence"]
    two = distance_faithfulness(feats[:40], feats[:40, :2], labels[:40])
    assert two["spearman"] is None and "at least 3 classes" in two["sentence"]


def test_perplexity_guidance_and_the_n_over_3_limit() -> None:
    g = perplexity_guidance(1797)
    assert (g["min"], g["max"], g["suggested"], g["limit"]) == (5.0, 50.0, 30.0, 599.0)
    assert "N / 3" in g["reason"] and "1,797" in g["reason"]
    big = perplexity_guidance(100_000)
    assert big["max"] == 1000.0 and big["suggested"] == 1000.0
    small = perplexity_guidance(12)
    assert small["max"] < 4 and small["min"] < 4  # both under N / 3 = 4
    validate_params("tsne", {"perplexity": 3.99}, 12)
    with pytest.raises(InvalidInputError, match=r"a third of the number of points \(N / 3 = 4"):
        validate_params("tsne", {"perplexity": 4}, 12)
    with pytest.raises(InvalidInputError, match="2 to 5"):
        check_sweep([10], 100)
    with pytest.raises(InvalidInputError, match="N / 3"):
        check_sweep([5, 40], 100)
    with pytest.raises(InvalidInputError, match="2 to 5"):
        check_seeds([1, 2, 3, 4, 5, 6])
    with pytest.raises(InvalidInputError, match="different"):
        check_seeds([1, 1])
    with pytest.raises(InvalidInputError, match="whole numbers"):
        check_seeds([1, 2.5])


def test_seed_runs_share_one_graph_and_one_p(tsne_builds) -> None:
    builds = tsne_builds
    x, _ = blobs(n_per=40)
    p = validate_params("tsne", {**FAST, "init": "random"}, x.shape[0])
    runs = seed_runs(x, "tsne", p, [0, 1, 2])
    assert builds == {"graph": 1, "P": 1}
    assert not np.allclose(runs[0].coords, runs[1].coords)  # random starts differ per seed
    st = stability(runs, [0, 1, 2])
    assert st["per_point"].shape == (120,) and 0.0 <= st["mean_jaccard"] <= 1.0
    assert st["mean_jaccard"] == pytest.approx(st["per_point"].mean())
    assert len(st["aligned"]) == 3 and st["aligned"][0] is not None


def test_deterministic_methods_are_perfectly_stable() -> None:
    x, _ = blobs()
    runs = seed_runs(x, "pca", {}, [0, 7])
    assert stability(runs, [0, 7])["mean_jaccard"] == pytest.approx(1.0)


def test_sweep_reuses_one_graph_built_for_the_largest_perplexity(tsne_builds) -> None:
    builds = tsne_builds
    x, _ = blobs(n_per=100)  # N = 300: perplexity 60 needs k = 180 > the default headroom of 150
    sweep = perplexity_sweep(x, FAST, [5, 60, 20])
    assert builds["graph"] == 1 and sweep["graph_neighbors"] == 180
    assert [r["perplexity"] for r in sweep["runs"]] == [5.0, 60.0, 20.0]
    assert all(r["graph_builds"] == 0 and r["coords"].shape == (300, 2) for r in sweep["runs"])


def test_noise_baseline_on_blobs_sits_at_chance_while_the_real_data_does_not() -> None:
    x, labels = blobs(n_per=60, centers=4)
    p = validate_params("tsne", FAST, x.shape[0])
    from server.engine.projection import project

    real = project(x, "tsne", p)
    nb = noise_baseline(x, labels, ["a", "b", "c", "d"], "tsne", p, real.coords)
    assert nb["coords"].shape == (240, 2)
    assert abs(nb["purity"] - nb["chance_uniform"]) < 0.1
    assert nb["hopkins_real"] > nb["hopkins"] - 0.05  # blobs clump at least as much as the noise


@pytest.mark.slow
def test_digits_cnn_penultimate_tsne_is_stable_over_seeds_and_noise_is_not(tmp_path, digits_model) -> None:
    """Must-show: mean 10-NN Jaccard >= 0.5 over 3 seeds on digits_cnn's penultimate layer, lower on
    the noise baseline, whose 10-NN purity is within 0.05 of chance (1 / 10)."""
    from server.datasets.store import DatasetStore
    from server.engine.projection import project
    from server.features_cache import FeatureCache

    store = DatasetStore(tmp_path / "datasets", tmp_path / "cache")
    feats = FeatureCache(store).features(digits_model, "classifier.2", "digits", "mean")
    x = feats.features
    p = validate_params("tsne", {"init": "random"}, x.shape[0])
    runs = seed_runs(x, "tsne", p, [0, 1, 2])
    real = stability(runs, [0, 1, 2])
    nb = noise_baseline(x, feats.labels, feats.classes, "tsne", p, runs[0].coords)
    noise_runs = seed_runs(noise_like(x), "tsne", p, [0, 1, 2])
    noise = stability(noise_runs, [0, 1, 2])
    print(f"digits stability {real['mean_jaccard']:.3f}, noise {noise['mean_jaccard']:.3f}, purity {nb}")
    assert real["mean_jaccard"] >= 0.5
    assert noise["mean_jaccard"] < real["mean_jaccard"]
    assert abs(nb["purity"] - 1 / len(feats.classes)) <= 0.05
    faithful = distance_faithfulness(x, project(x, "pca").coords, feats.labels)
    assert faithful["spearman"] is not None and -1 <= faithful["spearman"] <= 1
