"""2-D projections of feature matrices: resumable t-SNE (openTSNE), PCA, Kernel PCA, Isomap, Sammon, UMAP.

t-SNE keeps its state between phases, in the spirit of openTSNE's result objects:

- :class:`NeighborGraph` - the k-nearest-neighbour graph (indices, distances), the costly part;
- :class:`GraphAffinities` - P computed from a slice of that graph at one perplexity;
- :class:`TSNERun` - the graph, the affinities and the embedding (with its optimiser's gains and
  momentum) together. ``set_learning_rate`` only changes the step size of the next iterations;
  ``set_perplexity`` recomputes P from the same graph when the graph has >= 3 x perplexity
  neighbours, and builds a new graph only when it does not.

Every function here takes arrays and returns arrays and numbers; no web imports.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from openTSNE.affinity import Affinities

from server.engine.features import check_features
from server.errors import InvalidInputError

METHODS: tuple[str, ...] = ("tsne", "pca", "kpca", "isomap", "sammon", "umap")
TSNE_METRICS: tuple[str, ...] = ("euclidean", "cosine", "manhattan", "correlation")
KPCA_KERNELS: tuple[str, ...] = ("rbf", "poly", "sigmoid", "cosine", "linear")
MAX_POINTS_QUADRATIC = 5000  # Sammon and Kernel PCA hold N x N matrices
KL_EVERY = 50  # t-SNE iterations between evaluations of the KL divergence

# --- parameters ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ParamSpec:
    """One tunable parameter of a method: for validation, the API's docs and the dashboard's controls."""

    name: str
    default: Any
    kind: str  # "float" | "int" | "choice"
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    help: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


PARAMS: dict[str, tuple[ParamSpec, ...]] = {
    "tsne": (
        ParamSpec("perplexity", 30.0, "float", 1.0, None, help="effective number of neighbours; < N"),
        ParamSpec(
            "learning_rate", None, "float", 1e-3, None, help="epsilon; empty = auto (N / exaggeration)"
        ),
        ParamSpec("early_exaggeration", 12.0, "float", 1.0, 100.0),
        ParamSpec("early_exaggeration_iter", 250, "int", 0, 5000),
        ParamSpec("n_iter", 500, "int", 1, 20000, help="iterations after the early-exaggeration phase"),
        ParamSpec("metric", "euclidean", "choice", choices=TSNE_METRICS),
        ParamSpec("seed", 0, "int", 0, 2**31 - 1),
        ParamSpec("frame_every", 10, "int", 1, 1000, help="iterations between streamed frames"),
    ),
    "pca": (),
    "kpca": (
        ParamSpec("kernel", "rbf", "choice", choices=KPCA_KERNELS),
        ParamSpec("gamma", None, "float", 1e-12, None, help="kernel coefficient; empty = 1 / n_features"),
    ),
    "isomap": (ParamSpec("n_neighbors", 10, "int", 2, None),),
    "sammon": (
        ParamSpec("max_iter", 300, "int", 1, 10000),
        ParamSpec("tol", 1e-7, "float", 0.0, 1.0),
    ),
    "umap": (
        ParamSpec("n_neighbors", 15, "int", 2, None),
        ParamSpec("min_dist", 0.1, "float", 0.0, 1.0),
        ParamSpec("metric", "euclidean", "choice", choices=TSNE_METRICS),
        ParamSpec("seed", 0, "int", 0, 2**31 - 1),
    ),
}


def validate_params(method: str, params: dict[str, Any] | None, n_points: int) -> dict[str, Any]:
    """Defaults filled in, types coerced, ranges and N-dependent limits checked (InvalidInputError)."""
    if method not in PARAMS:
        raise InvalidInputError(f"Unknown projection method '{method}'; use one of {', '.join(METHODS)}.")
    params = dict(params or {})
    specs = {p.name: p for p in PARAMS[method]}
    unknown = sorted(set(params) - set(specs))
    if unknown:
        allowed = ", ".join(specs) or "none"
        raise InvalidInputError(
            f"Unknown parameter(s) {', '.join(unknown)} for {method}; allowed: {allowed}."
        )
    if n_points < 5:
        raise InvalidInputError(f"A projection needs at least 5 points; the dataset has {n_points}.")
    out: dict[str, Any] = {}
    for spec in PARAMS[method]:
        value = params.get(spec.name, spec.default)
        out[spec.name] = None if value is None else _coerce(method, spec, value)
    _check_n_limits(method, out, n_points)
    return out


def _coerce(method: str, spec: ParamSpec, value: Any) -> Any:
    where = f"{method} parameter '{spec.name}'"
    if spec.kind == "choice":
        if value not in spec.choices:
            raise InvalidInputError(f"{where} must be one of {', '.join(spec.choices)}; got {value!r}.")
        return value
    try:
        if isinstance(value, bool):
            raise TypeError
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{where} must be a number; got {value!r}.") from None
    if not math.isfinite(number):
        raise InvalidInputError(f"{where} must be a finite number; got {value!r}.")
    if spec.kind == "int":
        if number != int(number):
            raise InvalidInputError(f"{where} must be a whole number; got {value!r}.")
        number = int(number)
    if spec.minimum is not None and number < spec.minimum:
        raise InvalidInputError(f"{where} must be at least {spec.minimum:g}; got {value!r}.")
    if spec.maximum is not None and number > spec.maximum:
        raise InvalidInputError(f"{where} must be at most {spec.maximum:g}; got {value!r}.")
    return number


def _check_n_limits(method: str, p: dict[str, Any], n: int) -> None:
    if method == "tsne" and p["perplexity"] >= n:
        raise InvalidInputError(
            f"perplexity must be smaller than the number of points ({n}); got {p['perplexity']:g}."
        )
    if method in ("isomap", "umap") and p["n_neighbors"] >= n:
        raise InvalidInputError(
            f"n_neighbors must be smaller than the number of points ({n}); got {p['n_neighbors']}."
        )
    if method in ("sammon", "kpca") and n > MAX_POINTS_QUADRATIC:
        raise InvalidInputError(
            f"{method} holds an N x N matrix and is limited to {MAX_POINTS_QUADRATIC:,} points; "
            f"this dataset has {n:,}. Use t-SNE, UMAP or PCA."
        )


# --- results ---------------------------------------------------------------------------------------


@dataclass
class Projection:
    """2-D coordinates (N, 2) and the method's own quality numbers (KL, explained variance, stress...)."""

    method: str
    coords: np.ndarray
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)


FrameFn = Callable[[dict[str, Any]], None]  # receives a frame dict; may raise to stop (job cancelled)
ControlFn = Callable[[], dict[str, Any]]  # live values, e.g. {"learning_rate": 500, "perplexity": 20}


# --- t-SNE -----------------------------------------------------------------------------------------


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
        n_jobs: int = 1,
    ) -> None:
        from openTSNE import TSNEEmbedding
        from openTSNE.initialization import pca as pca_init

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
        self.affinities = GraphAffinities(graph, p["perplexity"], n_jobs)
        self.affinity_builds += 1
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
            learning_rate = _coerce("tsne", PARAMS["tsne"][1], learning_rate)
        self.learning_rate = learning_rate

    def set_perplexity(self, perplexity: float) -> bool:
        """Change perplexity; returns True when the neighbour graph had to be rebuilt."""
        perplexity = _coerce("tsne", PARAMS["tsne"][0], perplexity)
        if perplexity >= self.n:
            raise InvalidInputError(
                f"perplexity must be smaller than the number of points ({self.n}); got {perplexity:g}."
            )
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


# --- the other methods -----------------------------------------------------------------------------


def pca_2d(x: np.ndarray, seed: int = 0) -> Projection:
    from sklearn.decomposition import PCA

    model = PCA(n_components=2, random_state=seed)
    coords = model.fit_transform(x)
    ratio = model.explained_variance_ratio_
    return Projection(
        "pca",
        coords,
        {
            "explained_variance_pc1": float(ratio[0]),
            "explained_variance_pc2": float(ratio[1]),
            "explained_variance": float(ratio.sum()),
        },
    )


def kernel_pca_2d(
    x: np.ndarray, kernel: str = "rbf", gamma: float | None = None, seed: int = 0
) -> Projection:
    from sklearn.decomposition import KernelPCA

    model = KernelPCA(n_components=2, kernel=kernel, gamma=gamma, random_state=seed, eigen_solver="auto")
    coords = model.fit_transform(x)
    eig = np.asarray(model.eigenvalues_, dtype=np.float64)
    return Projection("kpca", coords, {"eigenvalue_1": float(eig[0]), "eigenvalue_2": float(eig[1])})


def isomap_2d(x: np.ndarray, n_neighbors: int = 10) -> Projection:
    from sklearn.manifold import Isomap

    model = Isomap(n_neighbors=n_neighbors, n_components=2)
    coords = model.fit_transform(x)
    return Projection("isomap", coords, {"reconstruction_error": float(model.reconstruction_error())})


def sammon_2d(
    x: np.ndarray,
    max_iter: int = 300,
    tol: float = 1e-7,
    max_halves: int = 20,
    progress: Callable[[int, float], None] | None = None,
) -> Projection:
    """Sammon's mapping (1969) with the pseudo-Newton step; reports Sammon's stress.

    Pairs of identical points get zero weight instead of the division by zero of the original.
    """
    from scipy.spatial.distance import cdist

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    big_d = cdist(x, x)
    total = big_d.sum()  # 2 x sum_{i<j} D_ij; the stress below is sum_{i<j}(D-d)^2/D / sum_{i<j} D
    if total == 0:
        raise InvalidInputError("Sammon's mapping needs at least two different points.")
    eye = np.eye(n)
    with np.errstate(divide="ignore"):
        d_inv = np.where(big_d > 0, 1.0 / np.where(big_d > 0, big_d, 1.0), 0.0)
    np.fill_diagonal(d_inv, 0.0)
    y = pca_2d(x).coords
    one = np.ones((n, 2))

    def stress_terms(y: np.ndarray) -> tuple[np.ndarray, float]:
        d = cdist(y, y) + eye
        dinv = 1.0 / d
        np.fill_diagonal(dinv, 0.0)
        delta = big_d - d
        np.fill_diagonal(delta, 0.0)
        return dinv, float(((delta**2) * d_inv).sum())

    dinv, e = stress_terms(y)
    iterations = 0
    for iterations in range(1, max_iter + 1):
        delta = dinv - d_inv
        deltaone = delta @ one
        g = delta @ y - y * deltaone
        dinv3 = dinv**3
        y2 = y**2
        h = dinv3 @ y2 - deltaone - 2.0 * y * (dinv3 @ y) + y2 * (dinv3 @ one)
        step = -g / np.maximum(np.abs(h), 1e-12)
        y_old = y
        e_new = e
        for _ in range(max_halves):
            y = y_old + step
            dinv_new, e_new = stress_terms(y)
            if e_new < e:
                dinv = dinv_new
                break
            step = step * 0.5
        else:
            y = y_old
            break
        improvement = (e - e_new) / e if e > 0 else 0.0
        e = e_new
        if progress is not None:
            progress(iterations, e / total)
        if improvement < tol:
            break
    return Projection("sammon", y, {"stress": float(e / total), "iterations": float(iterations)})


def umap_2d(
    x: np.ndarray, n_neighbors: int = 15, min_dist: float = 0.1, metric: str = "euclidean", seed: int = 0
) -> Projection:
    import umap

    model = umap.UMAP(
        n_neighbors=n_neighbors, min_dist=min_dist, metric=metric, random_state=seed, n_components=2
    )
    coords = model.fit_transform(x)
    return Projection("umap", np.asarray(coords, dtype=np.float64), {})


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
