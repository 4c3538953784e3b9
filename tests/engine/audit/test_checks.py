"""Per-filter checks on hand-set arrays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from server.engine.audit.checks import (
    dead_filters,
    low_variance_filters,
    positive_weight_share,
    redundant_filters,
    weight_cosine,
)


def test_dead_low_variance_and_positive_share_on_arrays():
    assert dead_filters(np.array([0.0, 0.0005, 0.3, 1.0]), 0.001).tolist() == [0, 1]
    assert dead_filters(np.array([0.0, 0.0005, 0.3]), 0.0).tolist() == [0]
    assert low_variance_filters(np.array([1.0, 1.2, 0.005, 0.9]), 0.01).tolist() == [2]
    assert low_variance_filters(np.array([1.0, 0.0, 0.0]), 0.01, exclude=[1]).tolist() == [2]
    assert positive_weight_share(np.array([[1.0, 2.0], [0.0, -1.0]])) == pytest.approx(2 / 3)
    assert positive_weight_share(np.zeros((2, 2))) == 0.0


def test_redundant_filters_keep_the_lowest_index_of_each_group():
    corr = np.eye(4)
    corr[0, 2] = corr[2, 0] = 0.99
    cos = np.eye(4)
    cos[1, 3] = cos[3, 1] = 0.995
    found = redundant_filters(corr, cos, 0.98, 0.99)
    assert [(r.filter, r.partner) for r in found] == [(2, 0), (3, 1)]
    assert redundant_filters(corr, cos, 0.98, 0.99, exclude=[0]) == found[1:]


def test_weight_cosine_of_copied_and_zero_filters():
    w = torch.tensor([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0], [-1.0, 0.5]])
    cos = weight_cosine(w)
    assert cos[0, 1] == pytest.approx(1.0)
    assert cos[0, 2] == 0.0 and cos[0, 3] == pytest.approx(0.0, abs=1e-6)  # float32 rounding
