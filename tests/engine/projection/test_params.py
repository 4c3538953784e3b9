"""Bad parameters and data are refused with a message naming what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from server.engine.projection import project
from server.engine.projection.params import validate_params
from server.engine.projection.tsne import TSNERun
from server.errors import InvalidInputError
from tests.engine.projection.data import blobs


def test_bad_parameters_and_data_are_refused_with_a_message() -> None:
    x, _ = blobs(n_per=4)  # N = 12
    with pytest.raises(
        InvalidInputError, match="perplexity must be smaller than a third of the number of points"
    ):
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
