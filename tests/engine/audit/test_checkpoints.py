"""Checkpoint comparison on the digits training snapshots and on hand-made weights."""

from __future__ import annotations

import copy
import itertools
import math

import pytest
import torch

from server.engine.audit.checkpoints import compare_series, compare_state_dicts, most_changed_filters
from server.errors import InvalidInputError
from server.zoo.checkpoints import read_state_dict
from server.zoo.digits import SNAPSHOT_EPOCHS, snapshot_paths


def digits_snapshots(digits_model) -> list[tuple[str, dict[str, torch.Tensor]]]:
    from server.zoo.builtin import digits_dir

    paths = snapshot_paths(digits_dir())
    assert [p.stem for p in paths] == [f"epoch_{e:02d}" for e in SNAPSHOT_EPOCHS]
    return [(p.stem, read_state_dict(p)) for p in paths]


def test_relative_updates_shrink_across_digits_snapshots(digits_model):
    series = compare_series(digits_snapshots(digits_model))
    per_epoch = [c.per_epoch for c in series]
    assert all(a > b for a, b in itertools.pairwise(per_epoch)), per_epoch
    totals = [c.relative_update for c in series]
    assert all(a > b for a, b in itertools.pairwise(totals)), totals
    for layer in series[0].layers:  # and layer by layer
        rates = [
            next(x for x in c.layers if x.layer == layer.layer).relative_update / c.epochs for c in series
        ]
        assert all(a > b for a, b in itertools.pairwise(rates)), (layer.layer, rates)


def test_filters_that_never_changed_late_in_training_are_dead_ones(digits_model, digits_result):
    """A dead ReLU unit gets no gradient: between epochs 10 and 30 its weights must not move."""
    snapshots = dict(digits_snapshots(digits_model))
    cmp = compare_state_dicts(snapshots["epoch_10"], snapshots["epoch_30"], ("epoch_10", "epoch_30"))
    dead = digits_result.flagged(["dead"])
    unchanged = {layer.layer: set(layer.unchanged) for layer in cmp.layers}
    assert sum(map(len, unchanged.values())) > 10
    for layer, filters in unchanged.items():
        assert filters <= set(dead.get(layer, [])), layer


def test_comparison_finds_filters_that_never_changed():
    a = {"conv.weight": torch.randn(4, 2, 3, 3), "conv.bias": torch.zeros(4)}
    b = copy.deepcopy(a)
    b["conv.weight"][1] += 0.5
    b["conv.weight"][3] *= 2.0
    cmp = compare_state_dicts(a, b, ("epoch_01", "epoch_03"))
    (layer,) = cmp.layers
    assert layer.unchanged == [0, 2]
    assert layer.filter_change[3] == pytest.approx(1.0)
    assert layer.filter_change[1] == pytest.approx(
        0.5 * math.sqrt(18) / float(a["conv.weight"][1].norm()), rel=1e-5
    )
    expected = math.sqrt(float((b["conv.weight"] - a["conv.weight"]).norm() ** 2)) / float(
        a["conv.weight"].norm()
    )
    assert layer.relative_update == pytest.approx(expected)
    assert cmp.epochs == 2 and cmp.to_dict()["unchanged_filters"] == 2


def test_checkpoints_of_different_architectures_are_refused():
    a = {"conv.weight": torch.randn(4, 2, 3, 3)}
    with pytest.raises(InvalidInputError, match=r"different architectures.*conv\.weight"):
        compare_state_dicts(a, {"conv.weight": torch.randn(8, 2, 3, 3)})
    with pytest.raises(InvalidInputError, match=r"different architectures.*fc\.weight"):
        compare_state_dicts(a, {**a, "fc.weight": torch.randn(2, 2)})
    with pytest.raises(InvalidInputError, match="unchanged_update"):
        compare_state_dicts(a, a, unchanged_update=2.0)


def test_most_changed_filters_rank_by_relative_change_within_the_layers_asked_for():
    a = {
        "c1.weight": torch.ones(3, 1, 2, 2),
        "c2.weight": torch.ones(2, 3, 1, 1),
        "c1.bias": torch.zeros(3),
    }
    b = copy.deepcopy(a)
    b["c1.weight"][1] *= 1.5  # relative change 0.5
    b["c1.weight"][2] *= 1.1  # 0.1
    b["c2.weight"][0] *= 3.0  # 2.0
    b["c1.bias"] += 100  # not a filter's weights: never ranked
    comparison = compare_state_dicts(a, b, ("a", "b"))
    top = most_changed_filters(comparison, 3)
    assert [(f.layer, f.index) for f in top] == [("c2", 0), ("c1", 1), ("c1", 2)]
    assert [f.change for f in top] == pytest.approx([2.0, 0.5, 0.1])
    only_c1 = most_changed_filters(comparison, 5, ["c1"])
    assert [(f.layer, f.index) for f in only_c1] == [
        ("c1", 1),
        ("c1", 2),
        ("c1", 0),
    ]  # all three, ties stable
    with pytest.raises(InvalidInputError, match="No compared weights in c9"):
        most_changed_filters(comparison, 3, ["c9"])
    with pytest.raises(InvalidInputError, match="at least one"):
        most_changed_filters(comparison, 0)


def test_the_digits_filters_that_moved_most_after_epoch_1_moved_more_than_the_layer(digits_model):
    snaps = dict(digits_snapshots(digits_model))
    comparison = compare_state_dicts(snaps["epoch_01"], snaps["epoch_30"], ("epoch_01", "epoch_30"))
    top = most_changed_filters(comparison, 4, ["features.2"])
    layer = next(u for u in comparison.layers if u.layer == "features.2")
    assert all(f.change >= layer.relative_update for f in top)
    assert [f.change for f in top] == sorted((f.change for f in top), reverse=True)
