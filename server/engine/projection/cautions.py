"""What the lecture warns about t-SNE (and its cousins), measured on the user's own features.

- :func:`seed_runs` + :func:`stability` - "it creates a new plot every time": the same projection
  over 2-5 seeds (t-SNE runs share one neighbour graph and one P), aligned by Procrustes for small
  multiples, and the Jaccard overlap of every point's 10 nearest neighbours across the seeds;
- :func:`noise_like` + :func:`noise_baseline` - "random noise doesn't always look random": the same
  method on Gaussian noise of the same N and dimension, its k-NN purity against the same labels
  (chance) and a clumpiness score (:func:`hopkins`) for the real and the noise embedding alike;
- :func:`distance_faithfulness` - "distance between plots might not mean anything": the Spearman
  correlation of class-centroid distances in the embedding and in the feature space, with a sentence;
- :func:`perplexity_guidance` + :func:`perplexity_sweep` - perplexity "needs to change according to
  the number of data points": the range that suits N with the reason, and a sweep that reuses one
  neighbour graph built for the largest perplexity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import numpy as np

from server.engine.projection.params import FrameFn, Projection, check_perplexity, validate_params
from server.engine.projection.tsne import GraphAffinities, NeighborGraph, TSNERun, graph_k
from server.errors import InvalidInputError

MIN_SEEDS, MAX_SEEDS = 2, 5
MAX_SWEEP = 5
STABILITY_K = 10
ProgressFn = Callable[[float, str], None]

T = TypeVar("T", int, float)


def _no_progress(_fraction: float, _message: str) -> None:
    return None


# --- stability over seeds ------------------------------------------------------------------------


def check_seeds(seeds: Sequence[Any]) -> list[int]:
    """2 to 5 different whole-number seeds (InvalidInputError otherwise)."""
    if not MIN_SEEDS <= len(seeds) <= MAX_SEEDS:
        raise InvalidInputError(f"seeds takes {MIN_SEEDS} to {MAX_SEEDS} seeds; got {len(seeds)}.")
    out: list[int] = []
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 0 <= int(s) < 2**31:
            raise InvalidInputError(f"seeds must be whole numbers from 0 to 2^31 - 1; got {s!r}.")
        out.append(int(s))
    return _distinct("seeds", out)


def seed_runs(
    x: np.ndarray,
    method: str,
    params: dict[str, Any],
    seeds: Sequence[int],
    *,
    first: Projection | None = None,
    graph: NeighborGraph | None = None,
    affinities: GraphAffinities | None = None,
    n_jobs: int = 1,
    progress: ProgressFn = _no_progress,
    on_frame: FrameFn | None = None,
) -> list[Projection]:
    """The projection of ``x`` once per seed. ``first`` is the already-computed run of ``seeds[0]``.

    t-SNE runs share the neighbour graph and the affinities P (they do not depend on the seed), so
    only the optimisation is repeated; methods without randomness (PCA, Isomap, Sammon) give the
    same layout for every seed, which the stability then reports as 1.
    """
    from server.engine.projection import project

    runs: list[Projection] = [] if first is None else [first]
    for i, seed in enumerate(seeds[len(runs) :], start=len(runs)):
        progress(i / len(seeds), f"seed {seed} ({i + 1}/{len(seeds)})")
        p = {**params, "seed": seed} if "seed" in params else dict(params)
        if method == "tsne":
            run = TSNERun(x, p, graph=graph, affinities=affinities, n_jobs=n_jobs)
            graph, affinities = run.graph, run.affinities
            result = run.run(on_frame)
        else:
            result = project(x, method, p, n_jobs=n_jobs)
        runs.append(result)
    return runs


def procrustes_align(reference: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``y`` rotated (or reflected), scaled and shifted to fit ``reference`` best in least squares."""
    ref = np.asarray(reference, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    mu_r, mu_y = ref.mean(0), y.mean(0)
    a, b = ref - mu_r, y - mu_y
    norm_b = np.linalg.norm(b)
    if norm_b == 0:
        return np.tile(mu_r, (y.shape[0], 1))
    u, s, vt = np.linalg.svd(b.T @ a)
    rotation = u @ vt
    scale = s.sum() / norm_b**2
    return np.asarray(scale * b @ rotation + mu_r)


def knn_sets(coords: np.ndarray, k: int) -> np.ndarray:
    from server.engine.purity import knn_indices

    return knn_indices(coords, k)


def neighbour_jaccard(runs: Sequence[np.ndarray], k: int = STABILITY_K) -> np.ndarray:
    """Per point: the Jaccard overlap of its k nearest neighbours, averaged over every pair of runs."""
    if len(runs) < 2:
        raise InvalidInputError("Stability needs at least two runs.")
    n = np.asarray(runs[0]).shape[0]
    k = min(k, n - 1)
    rows = np.repeat(np.arange(n, dtype=np.int64), k)
    # (point, neighbour) pairs as single numbers, so one isin counts the common neighbours of all rows
    keys = [rows * n + knn_sets(r, k).ravel() for r in runs]
    total = np.zeros(n)
    pairs = 0
    for a in range(len(keys)):
        for b in range(a + 1, len(keys)):
            inter = np.bincount(rows[np.isin(keys[a], keys[b])], minlength=n)
            total += inter / (2 * k - inter)
            pairs += 1
    return total / pairs


def stability(runs: Sequence[Projection], seeds: Sequence[int], k: int = STABILITY_K) -> dict[str, Any]:
    """Mean and per-point 10-NN Jaccard across the seeds' runs, and the runs aligned on the first."""
    coords = [np.asarray(r.coords, dtype=np.float64) for r in runs]
    per_point = neighbour_jaccard(coords, k)
    aligned = [coords[0]] + [procrustes_align(coords[0], c) for c in coords[1:]]
    mean = float(per_point.mean())
    return {
        "seeds": list(seeds),
        "k": min(k, coords[0].shape[0] - 1),
        "mean_jaccard": mean,
        "per_point": per_point,
        "aligned": aligned,
        "metrics": [dict(r.metrics) for r in runs],
        "sentence": stability_sentence(mean, len(seeds)),
    }


def stability_sentence(mean: float, n_seeds: int) -> str:
    what = f"Over {n_seeds} seeds, on average {mean:.0%} of each point's 10 nearest neighbours agree"
    if mean >= 0.5:
        return f"{what}: the local neighbourhoods are stable; the global layout may still move."
    return f"{what}: this layout is largely one draw among many; do not read single neighbourhoods."


# --- noise baseline ------------------------------------------------------------------------------


def noise_like(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """Gaussian noise of the same N and dimension, with each feature's mean and spread."""
    x = np.asarray(x, dtype=np.float64)
    rng = np.random.default_rng(seed)
    std = x.std(0)
    std = np.where(std > 0, std, 1.0)
    return rng.normal(size=x.shape) * std + x.mean(0)


def chance_purity(labels: np.ndarray) -> float:
    """Expected k-NN purity when neighbours ignore the labels: sum over classes of (n_c / N)^2 (about)."""
    labels = np.asarray(labels)
    n = labels.shape[0]
    counts = np.bincount(labels).astype(np.float64)
    return float((counts * (counts - 1)).sum() / (n * (n - 1)))


def hopkins(coords: np.ndarray, sample: int | None = None, seed: int = 0, repeats: int = 5) -> float:
    """Hopkins statistic of a point set (Lawson & Jurs 1990, distances to the power of the dimension).

    About 0.5 for points spread uniformly over their bounding box, towards 1 for clumps, towards 0
    for a regular grid. ``sample`` points (default N / 10, 20..500) are compared with as many
    uniform probes; the mean over ``repeats`` draws is returned.
    """
    from scipy.spatial import cKDTree

    y = np.asarray(coords, dtype=np.float64)
    n, d = y.shape
    if n < 4:
        raise InvalidInputError("The Hopkins statistic needs at least 4 points.")
    m = sample or int(min(500, max(20, n // 10)))
    m = min(m, n - 1)
    tree = cKDTree(y)
    lo, hi = y.min(0), y.max(0)
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(repeats):
        probes = rng.uniform(lo, hi, size=(m, d))
        u = tree.query(probes, k=1)[0]
        picks = rng.choice(n, m, replace=False)
        w = tree.query(y[picks], k=2)[0][:, 1]
        ud, wd = (u**d).sum(), (w**d).sum()
        values.append(ud / (ud + wd) if ud + wd > 0 else 0.5)
    return float(np.mean(values))


def noise_baseline(
    x: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    method: str,
    params: dict[str, Any],
    real: np.ndarray,
    *,
    k: int = 10,
    seed: int = 0,
    n_jobs: int = 1,
    on_frame: FrameFn | None = None,
) -> dict[str, Any]:
    """The same method and parameters on :func:`noise_like` ``x``: its layout, purity and clumpiness."""
    from server.engine.projection import project
    from server.engine.purity import knn_purity

    noise = noise_like(x, seed)
    result = project(noise, method, params, n_jobs=n_jobs, on_frame=on_frame)
    purity = knn_purity(result.coords, labels, list(class_names), k)
    chance = chance_purity(labels)
    h_noise, h_real = hopkins(result.coords), hopkins(real)
    return {
        "coords": np.asarray(result.coords),
        "purity": purity.overall,
        "chance": chance,
        "chance_uniform": 1.0 / len(class_names),
        "k": purity.k,
        "hopkins": h_noise,
        "hopkins_real": h_real,
        "metrics": dict(result.metrics),
        "sentence": (
            f"The same {method} on Gaussian noise of the same size: its {purity.k}-NN purity is "
            f"{purity.overall:.2f} (chance {chance:.2f}); Hopkins clumpiness {h_noise:.2f} for noise "
            f"against {h_real:.2f} for your features (0.5 = no clusters). "
            "Clusters in a plot are not proof of clusters in the data."
        ),
    }


# --- distance faithfulness -----------------------------------------------------------------------

FAITHFUL_RHO, PARTLY_RHO = 0.8, 0.5


def distance_faithfulness(features: np.ndarray, coords: np.ndarray, labels: np.ndarray) -> dict[str, Any]:
    """Spearman correlation between class-centroid distances in the embedding and in the features."""
    from scipy.spatial.distance import pdist
    from scipy.stats import spearmanr

    x = np.asarray(features, dtype=np.float64)
    y = np.asarray(coords, dtype=np.float64)
    labels = np.asarray(labels)
    present = np.unique(labels)
    if present.size < 3:
        return {
            "spearman": None,
            "n_classes": int(present.size),
            "pairs": 0,
            "sentence": "Distances between clusters need at least 3 classes to be compared.",
        }
    cx = np.stack([x[labels == c].mean(0) for c in present])
    cy = np.stack([y[labels == c].mean(0) for c in present])
    dx, dy = pdist(cx), pdist(cy)
    rho = float(spearmanr(dx, dy)[0]) if np.ptp(dx) > 0 and np.ptp(dy) > 0 else float("nan")
    return {
        "spearman": None if math.isnan(rho) else rho,
        "n_classes": int(present.size),
        "pairs": int(dx.size),
        "sentence": faithfulness_sentence(rho),
    }


def faithfulness_sentence(rho: float) -> str:
    if math.isnan(rho):
        return "Cluster distances cannot be compared here (all class centres coincide)."
    tail = f"(Spearman rho = {rho:.2f} between class-centre distances in the plot and in the features)"
    if rho >= FAITHFUL_RHO:
        return f"Cluster distances roughly follow the feature space {tail}."
    if rho >= PARTLY_RHO:
        return f"Cluster distances only partly follow the feature space {tail}; compare with care."
    return f"Cluster distances are not meaningful here {tail}."


# --- perplexity ----------------------------------------------------------------------------------


def perplexity_guidance(n: int) -> dict[str, Any]:
    """The perplexity range that suits N points, the largest allowed value, and why."""
    if n < 5:
        raise InvalidInputError(f"A projection needs at least 5 points; the dataset has {n}.")
    limit = n / 3
    below = math.nextafter(limit, 0.0)
    upper = max(50.0, n / 100)
    low, high = min(5.0, below), min(upper, below)
    suggested = min(max(30.0, n / 100), below)

    def down(v: float) -> float:  # two decimals, never rounded up onto the limit
        return math.floor(v * 100) / 100

    return {
        "n": n,
        "min": down(low),
        "max": down(high),
        "suggested": down(suggested),
        "limit": round(limit, 4),
        "reason": (
            f"Perplexity is about the number of neighbours each point keeps. t-SNE calibrates every point "
            f"on its 3 x perplexity nearest neighbours, so with N = {n:,} it must stay below N / 3 = "
            f"{limit:,.4g}. 5-50 is the usual range (van der Maaten & Hinton 2008); for large N about "
            f"N / 100 (here {n / 100:,.4g}) keeps more of the global structure (Kobak & Berens 2019)."
        ),
    }


def check_sweep(perplexities: Sequence[Any], n: int) -> list[float]:
    if not 2 <= len(perplexities) <= MAX_SWEEP:
        raise InvalidInputError(f"perplexities takes 2 to {MAX_SWEEP} values; got {len(perplexities)}.")
    out: list[float] = []
    for p in perplexities:
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p) or p < 1:
            raise InvalidInputError(f"perplexities must be numbers of at least 1; got {p!r}.")
        check_perplexity(float(p), n)
        out.append(float(p))
    return _distinct("perplexities", out)


def perplexity_sweep(
    x: np.ndarray,
    params: dict[str, Any],
    perplexities: Sequence[float],
    *,
    graph: NeighborGraph | None = None,
    n_jobs: int = 1,
    progress: ProgressFn = _no_progress,
    on_frame: FrameFn | None = None,
) -> dict[str, Any]:
    """t-SNE at each perplexity; one neighbour graph, built for the largest, serves them all."""
    from server.engine.projection.tsne import build_neighbor_graph

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    values = check_sweep(perplexities, n)
    base = validate_params("tsne", params, n)
    top = max(values)
    if graph is None or graph.n != n or graph.metric != base["metric"] or not graph.supports(top):
        graph = build_neighbor_graph(x, graph_k(top, n), base["metric"], base["seed"], n_jobs)
    runs: list[dict[str, Any]] = []
    for i, p in enumerate(values):
        progress(i / len(values), f"perplexity {p:g} ({i + 1}/{len(values)})")
        run = TSNERun(x, {**base, "perplexity": p}, graph=graph, n_jobs=n_jobs)
        result = run.run(on_frame)
        runs.append(
            {
                "perplexity": p,
                "coords": result.coords,
                "kl_divergence": result.metrics.get("kl_divergence"),
                "graph_builds": run.graph_builds,
            }
        )
    return {"perplexities": values, "graph_neighbors": graph.k, "runs": runs}


def _distinct(name: str, values: list[T]) -> list[T]:
    """``values`` when no two are equal, else a 422 that names the option."""
    if len(set(values)) != len(values):
        raise InvalidInputError(f"{name} must be different from each other; got {values}.")
    return values
