"""PCA, Kernel PCA, Isomap, Sammon and UMAP: coordinates and each method's own quality number."""

from __future__ import annotations

import numpy as np
import pytest

from server.engine.projection import project
from server.engine.projection.classic import sammon_2d
from tests.engine.projection.data import blobs


@pytest.mark.parametrize(
    ("method", "params", "metric"),
    [
        ("pca", {}, "explained_variance"),
        ("kpca", {"kernel": "rbf", "gamma": 0.01}, "eigenvalue_1"),
        ("isomap", {"n_neighbors": 8}, "reconstruction_error"),
        ("sammon", {"max_iter": 50}, "stress"),
    ],
)
def test_other_methods_give_coordinates_and_their_metric(method: str, params: dict, metric: str) -> None:
    from server.engine.purity import knn_purity

    x, y = blobs(n_per=20)
    result = project(x, method, params)
    assert result.coords.shape == (60, 2) and np.isfinite(result.coords).all()
    assert metric in result.metrics
    assert knn_purity(result.coords, y, ["a", "b", "c"], k=5).overall > 0.9


def test_pca_explained_variance_matches_a_hand_made_plane() -> None:
    rng = np.random.default_rng(1)
    x = np.zeros((40, 3))
    x[:, 0] = rng.normal(size=40) * 3
    x[:, 1] = rng.normal(size=40)
    assert project(x, "pca").metrics["explained_variance"] == pytest.approx(1.0)


def test_sammon_stress_is_zero_for_planar_data_and_falls_with_iterations() -> None:
    rng = np.random.default_rng(2)
    planar = np.c_[rng.normal(size=(30, 2)), np.zeros((30, 2))]
    assert sammon_2d(planar, max_iter=20).metrics["stress"] < 1e-6
    x, _ = blobs(n_per=15)
    few, more = sammon_2d(x, max_iter=1), sammon_2d(x, max_iter=100)
    assert more.metrics["stress"] < few.metrics["stress"]


@pytest.mark.slow
def test_umap_runs_with_its_parameters() -> None:
    x, _ = blobs(n_per=20)
    result = project(x, "umap", {"n_neighbors": 5, "min_dist": 0.3})
    assert result.coords.shape == (60, 2)
