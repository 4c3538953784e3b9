"""2-D projections of feature matrices: resumable t-SNE (openTSNE), PCA, Kernel PCA, Isomap, Sammon, UMAP.

- :mod:`.params` - every method's parameters, validated in one place, and the :class:`Projection` result;
- :mod:`.tsne` - t-SNE whose neighbour graph, affinities and optimiser state survive live changes of
  learning rate and perplexity;
- :mod:`.classic` - the other methods;
- :mod:`.cautions` - the lecture's t-SNE warnings measured: stability over seeds, noise baseline,
  distance faithfulness, perplexity guidance and sweeps.

:func:`project` is the one entry point. Every function here takes arrays and returns arrays and
numbers; no web imports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from server.engine.features import check_features
from server.engine.projection.classic import isomap_2d, kernel_pca_2d, pca_2d, sammon_2d, umap_2d
from server.engine.projection.params import (
    KPCA_KERNELS,
    MAX_POINTS_QUADRATIC,
    METHODS,
    PARAMS,
    TSNE_METRICS,
    ControlFn,
    FrameFn,
    ParamSpec,
    Projection,
    validate_params,
)
from server.engine.projection.tsne import (
    GraphAffinities,
    GraphCache,
    NeighborGraph,
    TSNERun,
    build_neighbor_graph,
    graph_k,
)
from server.errors import InvalidInputError

__all__ = [
    "KPCA_KERNELS",
    "MAX_POINTS_QUADRATIC",
    "METHODS",
    "PARAMS",
    "TSNE_METRICS",
    "ControlFn",
    "FrameFn",
    "GraphAffinities",
    "GraphCache",
    "NeighborGraph",
    "ParamSpec",
    "Projection",
    "TSNERun",
    "build_neighbor_graph",
    "graph_k",
    "isomap_2d",
    "kernel_pca_2d",
    "pca_2d",
    "project",
    "sammon_2d",
    "umap_2d",
    "validate_params",
]


def project(
    features: np.ndarray,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    on_frame: FrameFn | None = None,
    control: ControlFn | None = None,
    graph: NeighborGraph | None = None,
    n_jobs: int = 1,
    progress: Callable[[float], None] | None = None,
) -> Projection:
    """Run ``method`` on (N, D) features; bad data or parameters raise InvalidInputError.

    ``on_frame``/``control`` stream and steer t-SNE; ``progress`` (0..1) is called by the iterative
    Sammon mapping - either may raise (a cancelled job) to stop the run.
    """
    x = check_features(features)
    p = validate_params(method, params, x.shape[0])
    start = time.perf_counter()
    if method == "tsne":
        run = TSNERun(x, p, graph=graph, n_jobs=n_jobs)
        result = run.run(on_frame, control)
    elif method == "pca":
        result = pca_2d(x)
    elif method == "kpca":
        result = kernel_pca_2d(x, p["kernel"], p["gamma"])
    elif method == "isomap":
        result = isomap_2d(x, p["n_neighbors"])
    elif method == "sammon":
        sammon_progress = None if progress is None else (lambda i, _stress: progress(i / p["max_iter"]))
        result = sammon_2d(x, p["max_iter"], p["tol"], progress=sammon_progress)
    else:
        result = umap_2d(x, p["n_neighbors"], p["min_dist"], p["metric"], p["seed"])
    if not np.isfinite(result.coords).all():
        raise InvalidInputError(
            f"{method} produced non-finite coordinates for these features; try other parameters."
        )
    result.params = {**p, **result.params}
    result.metrics["seconds"] = time.perf_counter() - start
    return result
