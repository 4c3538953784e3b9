"""The pure verdict: one of the issue's two, robust feature or fooling image, from two models' probabilities."""

from __future__ import annotations

import numpy as np
import pytest

from server.engine.optvis.verdict import FOOLING, ROBUST, verdict


def probs(n: int, order: list[int]) -> np.ndarray:
    """A distribution over ``n`` classes whose top classes are ``order``, in that order."""
    p = np.full(n, 1e-4)
    for rank, c in enumerate(order):
        p[c] = 0.5 / (rank + 1)
    return p / p.sum()


def test_target_in_the_other_models_top_five_is_robust_whatever_the_rendered_model_says() -> None:
    other = probs(20, [4, 7, 1, 9, 3, 2])  # target 3 ranked 5th
    for own in (0.01, 0.99):
        v = verdict(3, own, other)
        assert v.label == ROBUST and v.other_rank == 5
    assert [i for i, _ in v.other_top] == [4, 7, 1, 9, 3]
    assert v.other_probability == pytest.approx(float(other[3]))
    assert v.own_probability == 0.99


def test_sure_rendered_model_and_disagreeing_other_is_fooling() -> None:
    other = probs(20, [4, 7, 1, 9, 3, 2])  # target 2 ranked 6th: not in the top 5
    v = verdict(2, 0.97, other)
    assert v.label == FOOLING and v.other_rank == 6
    assert verdict(2, 0.97, other, top_k=6).label == ROBUST


def test_only_two_verdicts_and_an_unsure_rendered_model_is_flagged_not_a_third_verdict() -> None:
    other = probs(20, [4, 7, 1, 9, 3, 2])  # target 2 not in the top 5
    unsure = verdict(2, 0.2, other)
    assert unsure.label == FOOLING and unsure.own_sure is False
    assert verdict(2, 0.2, other, sure=0.1).own_sure is True
    assert verdict(2, 0.97, other).own_sure is True
    labels = {verdict(t, own, other).label for t in range(20) for own in (0.0, 0.3, 0.5, 1.0)}
    assert labels == {ROBUST, FOOLING}


def test_to_dict_and_bad_input() -> None:
    d = verdict(0, 0.9, probs(10, [0, 1])).to_dict()
    assert d["verdict"] == ROBUST and d["other_rank"] == 1 and len(d["other_top"]) == 5 and d["own_sure"]
    assert d["other_top"][0]["index"] == 0
    with pytest.raises(ValueError, match="out of range"):
        verdict(10, 0.9, probs(10, [0]))
    with pytest.raises(ValueError, match="top_k"):
        verdict(1, 0.9, probs(3, [0]))
