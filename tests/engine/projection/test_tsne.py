"""Resumable t-SNE: epsilon and perplexity changes reuse the graph, affinities and optimiser state."""

from __future__ import annotations

import numpy as np

from server.engine.projection import project
from server.engine.projection.tsne import GraphCache, TSNERun
from tests.engine.projection.data import FAST, blobs


def test_epsilon_change_mid_run_reuses_graph_and_affinities(tsne_builds) -> None:
    builds = tsne_builds

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


def test_time_capped_chunks_read_live_values_more_often() -> None:
    x, _ = blobs()
    run = TSNERun(x, {**FAST, "frame_every": 50})
    iterations: list[int] = []
    run.run(lambda f: iterations.append(f["iteration"]), max_chunk_seconds=1e-9)
    steps = np.diff([0, *iterations])
    assert steps.max() == 1 and iterations[-1] == 90  # one iteration per chunk, none lost
