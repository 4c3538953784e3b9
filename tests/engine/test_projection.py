"""Projections: resumable t-SNE (epsilon and perplexity changes reuse state), the other methods, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from server.engine import projection as proj
from server.engine.projection import GraphCache, TSNERun, project, validate_params
from server.errors import InvalidInputError


def blobs(n_per: int = 30, centers: int = 3, dim: int = 8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=10.0, size=(centers, dim))
    x = np.concatenate([m + rng.normal(size=(n_per, dim)) for m in means])
    return x, np.repeat(np.arange(centers), n_per)


FAST = {"perplexity": 10, "early_exaggeration_iter": 30, "n_iter": 60, "frame_every": 10}


def test_epsilon_change_mid_run_reuses_graph_and_affinities(monkeypatch) -> None:
    builds = {"graph": 0, "P": 0}
    real_build, real_compute = proj.build_neighbor_graph, proj.GraphAffinities._compute

    def counting_build(*a, **kw):
        builds["graph"] += 1
        return real_build(*a, **kw)

    def counting_compute(self, perplexity):
        builds["P"] += 1
        return real_compute(self, perplexity)

    monkeypatch.setattr(proj, "build_neighbor_graph", counting_build)
    monkeypatch.setattr(proj.GraphAffinities, "_compute", counting_compute)

    x, _ = blobs()
    run = TSNERun(x, {**FAST, "learning_rate": 100})
    graph, affinities, p_matrix, optimizer = (
        run.graph,
        run.affinities,
        run.affinities.P,
        run.embedding.optimizer,
    )
    frames: list[dict] = []
    live: dict = {}

    def on_frame(frame: dict) -> None:
        frames.append(frame)
        if len(frames) == 4:
            live["learning_rate"] = 7.5  # as PATCH /projections/{id} would set it
        assert run.graph is graph and run.affinities is affinities and run.affinities.P is p_matrix

    result = run.run(on_frame, control=lambda: dict(live))
    assert builds == {"graph": 1, "P": 1}
    assert run.embedding.optimizer is optimizer  # gains and momentum carried over
    rates = [f["learning_rate"] for f in frames]
    assert rates[:4] == [100.0] * 4 and set(rates[4:]) == {7.5}
    assert len(frames) > 4 and frames[4]["iteration"] > frames[3]["iteration"]
    assert not np.allclose(frames[4]["coords"], frames[3]["coords"])  # new frames keep moving
    assert result.coords.shape == (90, 2)


def test_perplexity_change_reuses_a_big_enough_graph_and_rebuilds_otherwise() -> None:
    x, _ = blobs(n_per=60)
    run = TSNERun(x, {**FAST, "perplexity": 5})  # graph built for perplexity 50 (k = 150)
    graph, affinities, p_before = run.graph, run.affinities, run.affinities.P
    assert graph.k == 150
    assert run.set_perplexity(40) is False
    assert run.graph is graph and run.affinities is affinities and run.graph_builds == 1
    assert run.affinities.P is not p_before and run.affinities.P.nnz > p_before.nnz  # P recomputed, wider
    assert run.set_perplexity(55) is True  # needs 165 > 150 neighbours: a new graph
    assert run.graph is not graph and run.graph.k == 165 and run.graph_builds == 2
    run.step(5)
    assert run.embedding.affinities is run.affinities


def test_graph_cache_serves_later_runs_with_smaller_perplexity() -> None:
    x, _ = blobs()
    first = TSNERun(x, {**FAST, "perplexity": 20})
    cache = GraphCache()
    cache.put("feat", first.graph)
    assert cache.get("feat", "euclidean", 25) is first.graph
    assert cache.get("feat", "cosine", 25) is None
    second = TSNERun(x, {**FAST, "perplexity": 12}, graph=cache.get("feat", "euclidean", 12))
    assert second.graph is first.graph and second.graph_builds == 0


def test_tsne_separates_blobs_and_reports_kl() -> None:
    from server.engine.purity import knn_purity

    x, y = blobs()
    result = project(x, "tsne", FAST)
    assert result.metrics["kl_divergence"] > 0
    assert knn_purity(result.coords, y, ["a", "b", "c"], k=5).overall == 1.0


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
    assert proj.sammon_2d(planar, max_iter=20).metrics["stress"] < 1e-6
    x, _ = blobs(n_per=15)
    few, more = proj.sammon_2d(x, max_iter=1), proj.sammon_2d(x, max_iter=100)
    assert more.metrics["stress"] < few.metrics["stress"]


@pytest.mark.slow
def test_umap_runs_with_its_parameters() -> None:
    x, _ = blobs(n_per=20)
    result = project(x, "umap", {"n_neighbors": 5, "min_dist": 0.3})
    assert result.coords.shape == (60, 2)


def test_bad_parameters_and_data_are_refused_with_a_message() -> None:
    x, _ = blobs(n_per=4)  # N = 12
    with pytest.raises(InvalidInputError, match="perplexity must be smaller than the number of points"):
        project(x, "tsne", {"perplexity": 12})
    with pytest.raises(InvalidInputError, match="at least 5 points"):
        project(x[:4], "pca")
    with pytest.raises(InvalidInputError, match="NaN"):
        project(np.where(np.eye(12, 8) > 0, np.nan, x), "tsne", {"perplexity": 3})
    with pytest.raises(InvalidInputError, match="constant"):
        project(np.ones((12, 8)), "pca")
    with pytest.raises(InvalidInputError, match="Unknown projection method"):
        validate_params("lda", {}, 12)
    with pytest.raises(InvalidInputError, match="Unknown parameter"):
        validate_params("tsne", {"perplexty": 5}, 12)
    with pytest.raises(InvalidInputError, match="must be one of"):
        validate_params("kpca", {"kernel": "laplace"}, 12)
    with pytest.raises(InvalidInputError, match="at least"):
        validate_params("tsne", {"learning_rate": -1}, 12)
    with pytest.raises(InvalidInputError, match="finite"):
        validate_params("umap", {"min_dist": float("nan")}, 12)
    with pytest.raises(InvalidInputError, match="n_neighbors must be smaller"):
        validate_params("isomap", {"n_neighbors": 20}, 12)
    run = TSNERun(x, {"perplexity": 3, "n_iter": 5, "early_exaggeration_iter": 0})
    with pytest.raises(InvalidInputError, match="perplexity"):
        run.set_perplexity(50)


def test_time_capped_chunks_read_live_values_more_often() -> None:
    x, _ = blobs()
    run = TSNERun(x, {**FAST, "frame_every": 50})
    iterations: list[int] = []
    run.run(lambda f: iterations.append(f["iteration"]), max_chunk_seconds=1e-9)
    steps = np.diff([0, *iterations])
    assert steps.max() == 1 and iterations[-1] == 90  # one iteration per chunk, none lost
