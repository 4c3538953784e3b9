"""Every projection method's tunable parameters (validated in one place) and the result type."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from server.errors import InvalidInputError

METHODS: tuple[str, ...] = ("tsne", "pca", "kpca", "isomap", "sammon", "umap")
TSNE_METRICS: tuple[str, ...] = ("euclidean", "cosine", "manhattan", "correlation")
KPCA_KERNELS: tuple[str, ...] = ("rbf", "poly", "sigmoid", "cosine", "linear")
MAX_POINTS_QUADRATIC = 5000  # Sammon and Kernel PCA hold N x N matrices


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
        ParamSpec("perplexity", 30.0, "float", 1.0, None, help="effective number of neighbours; < N / 3"),
        ParamSpec(
            "learning_rate", None, "float", 1e-3, None, help="epsilon; empty = auto (N / exaggeration)"
        ),
        ParamSpec("early_exaggeration", 12.0, "float", 1.0, 100.0),
        ParamSpec("early_exaggeration_iter", 250, "int", 0, 5000),
        ParamSpec("n_iter", 500, "int", 1, 20000, help="iterations after the early-exaggeration phase"),
        ParamSpec("metric", "euclidean", "choice", choices=TSNE_METRICS),
        ParamSpec("seed", 0, "int", 0, 2**31 - 1),
        ParamSpec("frame_every", 10, "int", 1, 1000, help="iterations between streamed frames"),
        ParamSpec(
            "init", "pca", "choice", choices=("pca", "random"), help="start layout; random varies with seed"
        ),
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
        out[spec.name] = None if value is None else coerce_param(method, spec, value)
    _check_n_limits(method, out, n_points)
    return out


def coerce_param(method: str, spec: ParamSpec, value: Any) -> Any:
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


def check_perplexity(perplexity: float, n: int) -> None:
    """t-SNE needs about 3 x perplexity neighbours of every point: perplexity must stay below N / 3."""
    if perplexity >= n / 3:
        raise InvalidInputError(
            f"perplexity must be smaller than a third of the number of points (N / 3 = {n / 3:.4g} "
            f"for N = {n}): t-SNE calibrates each point on its 3 x perplexity nearest neighbours, "
            f"and there are only {n - 1} others; got {perplexity:g}."
        )


def _check_n_limits(method: str, p: dict[str, Any], n: int) -> None:
    if method == "tsne":
        check_perplexity(p["perplexity"], n)
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
