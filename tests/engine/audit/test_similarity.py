"""Clusters, CKA, separability and drive on hand-set values."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from server.engine.audit.similarity import (
    best_matches,
    centred_gram,
    cka_between,
    cka_from_grams,
    correlation_clusters,
    input_drive,
    knn_purity_from_gram,
    linear_cka,
)


def test_correlation_clusters_group_correlated_filters():
    corr = np.array([[1, 0.9, 0, 0], [0.9, 1, 0, 0], [0, 0, 1, 0.8], [0, 0, 0.8, 1.0]])
    clusters, order = correlation_clusters(corr, 0.5)
    assert sorted(map(sorted, clusters)) == [[0, 1], [2, 3]]
    assert sorted(order) == [0, 1, 2, 3]
    pos = {f: i for i, f in enumerate(order)}
    assert abs(pos[0] - pos[1]) == 1 and abs(pos[2] - pos[3]) == 1


def test_cka_is_one_for_rotations_and_low_for_independent_features():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 6))
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    assert linear_cka(x, 3 * x @ q) == pytest.approx(1.0)
    assert linear_cka(x, rng.normal(size=(200, 6))) < 0.2
    m = cka_from_grams([centred_gram(x), centred_gram(np.ones((200, 2)))])
    assert m[0, 1] == 0.0  # a constant layer is similar to nothing


def test_knn_purity_on_separated_and_mixed_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 50)
    separated = rng.normal(size=(100, 2)) + labels[:, None] * 20
    assert knn_purity_from_gram(separated @ separated.T, labels, k=5) == 1.0
    mixed = rng.normal(size=(100, 2))
    assert knn_purity_from_gram(mixed @ mixed.T, labels, k=5) < 0.7


def test_input_drive_of_a_hand_set_conv_and_linear():
    conv = nn.Conv2d(2, 2, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([[1.0, -3.0], [0.0, 2.0]]).reshape(2, 2, 1, 1))
    drive = input_drive(conv.weight, 1, np.array([1.0, 0.5]))
    np.testing.assert_allclose(drive, [[1.0, 1.5], [0.0, 1.0]])
    dw = nn.Conv2d(2, 2, 3, groups=2, bias=False)
    nn.init.constant_(dw.weight, 1.0)
    np.testing.assert_allclose(input_drive(dw.weight, 2, np.array([1.0, 2.0])), [[9.0, 0.0], [0.0, 18.0]])
    lin = nn.Linear(4, 1, bias=False)  # input = 2 channels x 2 positions, flattened
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, 1.0, -2.0, 0.0]]))
    np.testing.assert_allclose(input_drive(lin.weight, 1, np.array([1.0, 1.0])), [[2.0, 2.0]])
    assert input_drive(lin.weight, 1, np.ones(3)) is None


def test_cka_between_two_networks_is_the_cross_block_and_best_matches_pick_each_rows_peak():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(100, 5))
    a = [x, np.tanh(x @ rng.normal(size=(5, 8))), rng.normal(size=(100, 3))]
    q, _ = np.linalg.qr(rng.normal(size=(5, 5)))
    b = [rng.normal(size=(100, 4)), 2 * x @ q]  # B's layer 1 is A's layer 0 rotated and scaled
    cka = cka_between([centred_gram(f) for f in a], [centred_gram(f) for f in b])
    assert cka.shape == (3, 2)
    for i, fa in enumerate(a):
        for j, fb in enumerate(b):
            assert cka[i, j] == pytest.approx(linear_cka(fa, fb))
    assert cka[0, 1] == pytest.approx(1.0)
    assert best_matches(cka)[0] == 1
    assert best_matches(np.array([[0.5, 0.5], [0.1, 0.9]])) == [0, 1]  # a tie goes to the earlier layer
    assert cka_between([], [centred_gram(x)]).shape == (0, 1)
