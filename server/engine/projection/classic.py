"""PCA, Kernel PCA, Isomap, Sammon's mapping and UMAP to two dimensions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from server.engine.projection.params import Projection
from server.errors import InvalidInputError


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
