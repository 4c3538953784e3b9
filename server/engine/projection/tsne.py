"""Resumable t-SNE (openTSNE) that keeps its state between phases, in the spirit of openTSNE's
result objects:

- :class:`NeighborGraph` - the k-nearest-neighbour graph (indices, distances), the costly part;
- :class:`GraphAffinities` - P computed from a slice of that graph at one perplexity;
- :class:`TSNERun` - the graph, the affinities and the embedding (with its optimiser's gains and
  momentum) together. ``set_learning_rate`` only changes the step size of the next iterations;
  ``set_perplexity`` recomputes P from the same graph when the graph has >= 3 x perplexity
  neighbours, and builds a new graph only when it does not.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from openTSNE.affinity import Affinities

from server.engine.features import check_features
from server.engine.projection.params import (
    PARAMS,
    ControlFn,
    FrameFn,
    Projection,
    check_perplexity,
    coerce_param,
    validate_params,
)
from server.errors import InvalidInputError

KL_EVERY = 50  # t-SNE iterations between evaluations of the KL divergence


@dataclass
class NeighborGraph:
    """k nearest neighbours of every point (self excluded): the part of t-SNE worth keeping."""

    indices: np.ndarray  # (N, k) int
    distances: np.ndarray  # (N, k) float
    metric: str

    @property
    def k(self) -> int:
        return int(self.indices.shape[1])

    @property
    def n(self) -> int:
        return int(self.indices.shape[0])

    def supports(self, perplexity: float) -> bool:
        """Enough neighbours for ``perplexity`` (3 x perplexity, or every other point already)."""
        return self.k >= min(self.n - 1, math.ceil(3 * perplexity))


def graph_k(perplexity: float, n: int, headroom_perplexity: float = 50.0) -> int:
    """Neighbours to compute: enough for ``perplexity`` and, cheaply, for slider moves up to 50."""
    return int(min(n - 1, math.ceil(3 * max(perplexity, headroom_perplexity))))


def build_neighbor_graph(
    x: np.ndarray, k: int, metric: str = "euclidean", seed: int = 0, n_jobs: int = 1
) -> NeighborGraph:
    """Exact neighbours for small N, Annoy (openTSNE's default) for large N."""
    from openTSNE.nearest_neighbors import Annoy, Sklearn

    n = x.shape[0]
    k = int(min(k, n - 1))
    if n <= 10_000 or metric == "correlation":
        index = Sklearn(x, k, metric=metric, n_jobs=n_jobs, random_state=seed)
    else:
        index = Annoy(x, k, metric=metric, n_jobs=n_jobs, random_state=seed)
    indices, distances = index.build()
    return NeighborGraph(np.asarray(indices), np.asarray(distances, dtype=np.float64), metric)


class GraphAffinities(Affinities):
    """Symmetric t-SNE affinities P from a :class:`NeighborGraph` at one perplexity."""

    def __init__(self, graph: NeighborGraph, perplexity: float, n_jobs: int = 1) -> None:
        super().__init__()
        self.graph = graph
        self.n_jobs = n_jobs
        self.perplexity = float(perplexity)
        self.P = self._compute(self.perplexity)

    def _compute(self, perplexity: float) -> Any:
        from openTSNE.affinity import joint_probabilities_nn

        if not self.graph.supports(perplexity):
            raise InvalidInputError(
                f"The neighbour graph has {self.graph.k} neighbours, too few for perplexity {perplexity:g}."
            )
        k = min(self.graph.k, math.ceil(3 * perplexity))
        p = joint_probabilities_nn(
            self.graph.indices[:, :k],
            self.graph.distances[:, :k],
            [perplexity],
            symmetrize=True,
            n_jobs=self.n_jobs,
        )
        return p

    def set_perplexity(self, perplexity: float) -> None:
        """Recompute P in place from the same neighbour graph."""
        self.P = self._compute(float(perplexity))
        self.perplexity = float(perplexity)


class GraphCache:
    """Recent neighbour graphs by (features key, metric), so a new perplexity reuses a big-enough graph."""

    def __init__(self, size: int = 4) -> None:
        self._d: OrderedDict[tuple[str, str], NeighborGraph] = OrderedDict()
        self.size = size

    def get(self, key: str, metric: str, perplexity: float) -> NeighborGraph | None:
        graph = self._d.get((key, metric))
        if graph is not None and graph.supports(perplexity):
            self._d.move_to_end((key, metric))
            return graph
        return None

    def put(self, key: str, graph: NeighborGraph) -> None:
        self._d[(key, graph.metric)] = graph
        self._d.move_to_end((key, graph.metric))
        while len(self._d) > self.size:
            self._d.popitem(last=False)


class TSNERun:
    """A t-SNE run whose neighbour graph, affinities and optimiser state survive parameter changes."""

    def __init__(
        self,
        x: np.ndarray,
        params: dict[str, Any] | None = None,
        *,
        graph: NeighborGraph | None = None,
        affinities: GraphAffinities | None = None,
        n_jobs: int = 1,
    ) -> None:
        """``graph`` and ``affinities`` from an earlier run on the same features are reused when they fit
        (same N, metric and - for the affinities - perplexity): runs over several seeds share both."""
        from openTSNE import TSNEEmbedding
        from openTSNE.initialization import pca as pca_init
        from openTSNE.initialization import random as random_init

        x = np.asarray(check_features(x), dtype=np.float64)
        self.params = validate_params("tsne", params, x.shape[0])
        self.x = x
        self.n = x.shape[0]
        self.n_jobs = n_jobs
        self.graph_builds = 0
        self.affinity_builds = 0
        p = self.params
        if (
            graph is None
            or graph.n != self.n
            or graph.metric != p["metric"]
            or not graph.supports(p["perplexity"])
        ):
            graph = self._build_graph(p["perplexity"])
        self.graph = graph
        if (
            affinities is not None
            and affinities.graph is graph
            and affinities.perplexity == float(p["perplexity"])
        ):
            self.affinities = affinities
        else:
            self.affinities = GraphAffinities(graph, p["perplexity"], n_jobs)
            self.affinity_builds += 1
        if p.get("init", "pca") == "random":
            init = random_init(self.n, random_state=p["seed"])
        else:
            init = pca_init(x, random_state=p["seed"])
        self.embedding = TSNEEmbedding(
            init, self.affinities, random_state=p["seed"], negative_gradient_method="auto", n_jobs=n_jobs
        )
        self.learning_rate: float | None = p["learning_rate"]
        self.iteration = 0
        self.total_iter = p["early_exaggeration_iter"] + p["n_iter"]
        self.kl_divergence: float | None = None

    def _build_graph(self, perplexity: float) -> NeighborGraph:
        self.graph_builds += 1
        return build_neighbor_graph(
            self.x, graph_k(perplexity, self.n), self.params["metric"], self.params["seed"], self.n_jobs
        )

    @property
    def perplexity(self) -> float:
        return float(self.affinities.perplexity)

    @property
    def in_early_exaggeration(self) -> bool:
        return self.iteration < self.params["early_exaggeration_iter"]

    def current_learning_rate(self) -> float:
        """The user's epsilon, or openTSNE's auto rule N / exaggeration (Belkina et al. 2019)."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        ex = self.params["early_exaggeration"] if self.in_early_exaggeration else 1.0
        return max(self.n / ex, 50.0)

    def set_learning_rate(self, learning_rate: float | None) -> None:
        """Change epsilon for the following iterations; graph, affinities and gains are kept."""
        if learning_rate is not None:
            learning_rate = coerce_param("tsne", PARAMS["tsne"][1], learning_rate)
        self.learning_rate = learning_rate

    def set_perplexity(self, perplexity: float) -> bool:
        """Change perplexity; returns True when the neighbour graph had to be rebuilt."""
        perplexity = coerce_param("tsne", PARAMS["tsne"][0], perplexity)
        check_perplexity(perplexity, self.n)
        if perplexity == self.perplexity:
            return False
        rebuilt = not self.graph.supports(perplexity)
        if rebuilt:
            self.graph = self._build_graph(perplexity)
            self.affinities = GraphAffinities(self.graph, perplexity, self.n_jobs)
            self.affinity_builds += 1
            self.embedding.affinities = self.affinities
        else:
            self.affinities.set_perplexity(perplexity)
        self.params = {**self.params, "perplexity": perplexity}
        return rebuilt

    def extend(self, at_least: int) -> None:
        """Make sure ``at_least`` more iterations remain (after a live change the points need room to move)."""
        self.total_iter = max(self.total_iter, self.iteration + at_least)

    def step(self, n_iter: int) -> None:
        """Run up to ``n_iter`` iterations, not crossing the end of the early-exaggeration phase."""
        p = self.params
        if self.in_early_exaggeration:
            n_iter = min(n_iter, p["early_exaggeration_iter"] - self.iteration)
            exaggeration, momentum = p["early_exaggeration"], 0.5
        else:
            exaggeration, momentum = 1.0, 0.8
        n_iter = min(n_iter, self.total_iter - self.iteration)
        if n_iter <= 0:
            return
        errors: list[float] = []
        end = self.iteration + n_iter
        # The KL divergence costs about one more gradient: evaluate it every KL_EVERY iterations and at the end.
        want_kl = end // KL_EVERY > self.iteration // KL_EVERY or end >= self.total_iter

        def record_kl(_iteration: int, error: float, _embedding: np.ndarray) -> bool:
            errors.append(float(error))
            return False  # never stop the optimiser from here

        self.embedding.optimize(
            n_iter,
            inplace=True,
            learning_rate=self.current_learning_rate(),
            exaggeration=exaggeration,
            momentum=momentum,
            n_jobs=self.n_jobs,
            callbacks=record_kl if want_kl else None,
            callbacks_every_iters=n_iter,
        )
        self.iteration += n_iter
        if errors:
            self.kl_divergence = errors[-1]

    @property
    def done(self) -> bool:
        return self.iteration >= self.total_iter

    def coords(self) -> np.ndarray:
        return np.asarray(self.embedding, dtype=np.float64).copy()

    def frame(self) -> dict[str, Any]:
        return {
            "iteration": self.iteration,
            "total_iter": self.total_iter,
            "phase": "early_exaggeration" if self.in_early_exaggeration else "standard",
            "kl_divergence": self.kl_divergence,
            "learning_rate": self.current_learning_rate(),
            "perplexity": self.perplexity,
            "coords": self.coords(),
        }

    def run(
        self,
        on_frame: FrameFn | None = None,
        control: ControlFn | None = None,
        *,
        min_iter_after_change: int = 200,
        max_chunk_seconds: float | None = None,
    ) -> Projection:
        """Iterate to the end, sending a frame every ``frame_every`` iterations and applying live changes.

        Live values are read between chunks of iterations, so a change waits for the current chunk.
        With ``max_chunk_seconds`` a chunk is also cut short in time (at large N an iteration takes
        tens of milliseconds): frames then come more often than every ``frame_every`` iterations.
        """
        every = int(self.params["frame_every"])
        chunk = every if max_chunk_seconds is None else 1  # the first chunk measures the iteration time
        applied: dict[str, Any] = {}
        while not self.done:
            if control is not None:
                changes = {k: v for k, v in control().items() if applied.get(k, object()) != v}
                if changes:
                    self.apply(changes)
                    applied.update(changes)
                    self.extend(min_iter_after_change)
            before, start = self.iteration, time.perf_counter()
            self.step(chunk)
            if max_chunk_seconds is not None and self.iteration > before:
                per_iter = (time.perf_counter() - start) / (self.iteration - before)
                chunk = max(1, min(every, int(max_chunk_seconds / max(per_iter, 1e-9))))
            if on_frame is not None:
                on_frame(self.frame())
        return self.result()

    def apply(self, changes: dict[str, Any]) -> None:
        """Apply live values: ``learning_rate`` and/or ``perplexity``."""
        if "learning_rate" in changes:
            self.set_learning_rate(changes["learning_rate"])
        if "perplexity" in changes and changes["perplexity"] is not None:
            self.set_perplexity(changes["perplexity"])

    def result(self) -> Projection:
        return Projection(
            "tsne",
            self.coords(),
            {
                "kl_divergence": float(self.kl_divergence)
                if self.kl_divergence is not None
                else float("nan"),
                "iterations": float(self.iteration),
                "graph_neighbors": float(self.graph.k),
            },
            {**self.params, "learning_rate": self.learning_rate},
        )
