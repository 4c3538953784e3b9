"""The neuron audit on hand-set tiny models, the planted-defect model and digits_cnn's snapshots."""

from __future__ import annotations

import copy
import itertools
import math

import numpy as np
import pytest
import torch
from torch import nn

from server.engine.audit import (
    AuditThresholds,
    ChannelAccumulator,
    audit_model,
    centred_gram,
    cka_from_grams,
    compare_series,
    compare_state_dicts,
    correlation_clusters,
    dead_filters,
    input_drive,
    knn_purity_from_gram,
    linear_cka,
    low_variance_filters,
    parse_gates,
    positive_weight_share,
    redundant_filters,
    response_points,
    weight_cosine,
    what_if_zeroing,
)
from server.engine.hooks import active_hook_count
from server.errors import InvalidInputError
from server.zoo.checkpoints import read_state_dict
from server.zoo.digits import SNAPSHOT_EPOCHS, snapshot_paths
from tests.audit_models import PLAN, clean_digits_model, digits_batches, digits_inputs, planted_digits_model


@pytest.fixture(scope="module")
def clean_model() -> nn.Module:
    return clean_digits_model()


@pytest.fixture(scope="module")
def planted_model() -> nn.Module:
    return planted_digits_model()


@pytest.fixture(scope="module")
def planted_result(planted_model):
    return audit_model(planted_model, digits_batches())


@pytest.fixture(scope="module")
def clean_result(clean_model):
    return audit_model(clean_model, digits_batches())


# --- the planted-defect model --------------------------------------------------------------------------


def found(result) -> set[tuple[str, int, str]]:
    return {(f.layer, f.filter, f.kind) for f in result.flags}


def test_planted_defects_are_found_with_precision_and_recall_one(planted_result):
    expected = PLAN.expected_filters()
    got = found(planted_result)
    true_pos = len(expected & got)
    precision = true_pos / len(got) if got else 0.0
    recall = true_pos / len(expected)
    assert (precision, recall) == (1.0, 1.0), (sorted(got), sorted(expected))
    assert planted_result.positive_layers == [PLAN.positive_layer]
    assert planted_result.redundant_layer_pairs == []


def test_copied_filters_name_their_source(planted_result):
    partners = {(f.layer, f.filter): f.partner for f in planted_result.flags if f.kind == "redundant"}
    assert partners == {(layer, dst): src for layer, pairs in PLAN.copies.items() for src, dst in pairs}


def test_clean_model_reports_nothing_at_default_thresholds(clean_model, clean_result):
    result = clean_result
    assert result.flags == []
    assert result.positive_layers == []
    assert result.redundant_layer_pairs == []
    assert result.summary()["clean"] is True
    assert active_hook_count(clean_model) == 0


def test_audit_never_changes_the_model_and_removes_its_hooks(planted_model):
    before = {k: v.clone() for k, v in planted_model.state_dict().items()}
    audit_model(planted_model, digits_batches()[:1])
    assert active_hook_count(planted_model) == 0
    after = planted_model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_hooks_are_removed_when_the_forward_raises(clean_model):
    def batches():
        x, y = digits_inputs()
        yield x[:8], y[:8]
        yield torch.zeros(2, 3, 8, 8), None  # wrong channel count: the conv raises

    with pytest.raises(RuntimeError):
        audit_model(clean_model, batches())
    assert active_hook_count(clean_model) == 0


def test_stricter_thresholds_flag_more_and_are_adjustable(clean_model, clean_result):
    strict = AuditThresholds(dead_share=0.45, redundant_correlation=0.5)
    result_strict = audit_model(clean_model, digits_batches(), thresholds=strict)
    assert len(result_strict.flags) > len(clean_result.flags) == 0
    assert {f.kind for f in result_strict.flags} == {"dead", "redundant"}
    assert result_strict.thresholds.dead_share == 0.45


@pytest.fixture(scope="module")
def digits_result(digits_model):
    return audit_model(digits_model.model, digits_batches())


def test_separability_curve_rises_on_trained_digits(digits_result):
    result = digits_result
    purity = {layer.name: layer.separability for layer in result.layers}
    assert all(0.0 <= p <= 1.0 for p in purity.values())
    assert purity["classifier.4"] > purity["features.0"] + 0.2
    # the trained model really has dead ReLU units, and the audit says so
    assert result.summary()["counts"]["dead"] > 0


# --- pieces on hand-set values --------------------------------------------------------------------------


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
    assert cos[0, 2] == 0.0 and cos[0, 3] == pytest.approx(0.0)


def test_saturated_units_of_a_hand_set_tanh_layer():
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh())
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[50.0, 0.0], [1.0, 0.0], [0.0, 0.1]]))
        model[0].bias.copy_(torch.tensor([0.0, 0.0, 10.0]))
    x = torch.randn(400, 2, generator=torch.Generator().manual_seed(0))
    result = audit_model(model, [(x, None)])
    kinds = {(f.filter, f.kind) for f in result.flags}
    assert (2, "saturated") in kinds  # tanh(10 +- small) is always ~1
    assert (1, "saturated") not in kinds
    share = result.layers[0].saturated_share
    assert share[2] == 1.0 and share[0] > 0.9 and share[1] < 0.5


def test_accumulator_matches_a_direct_computation():
    g = torch.Generator().manual_seed(1)
    batches = [
        torch.randn(5, 3, 4, 4, generator=g) * torch.tensor([1.0, 2.0, 0.5]).reshape(1, 3, 1, 1) + 3
        for _ in range(3)
    ]
    acc = ChannelAccumulator(3, positions_per_image=16, saturating=None, level=0.99, seed=0)
    for b in batches:
        acc.update(b)
    st = acc.stats()
    allx = torch.cat(batches).permute(1, 0, 2, 3).reshape(3, -1).double()
    np.testing.assert_allclose(st.std, allx.std(1, unbiased=False).numpy(), rtol=1e-5)
    np.testing.assert_allclose(st.mean, allx.mean(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(st.correlation, np.corrcoef(allx.numpy()), atol=1e-5)
    np.testing.assert_allclose(st.active_share, (allx > 0).double().mean(1).numpy())
    assert st.pooled.shape == (15, 3)


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


def test_response_points_skip_norms_and_find_the_activation():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.Conv2d(4, 4, 1),
        nn.Flatten(),
        nn.LazyLinear(3),
        nn.Sigmoid(),
    )
    model(torch.zeros(1, 1, 6, 6))
    model.eval()
    points = response_points(model, torch.zeros(1, 1, 6, 6))
    assert (points["0"].module, points["0"].rectified) == ("2", True)
    assert (points["3"].module, points["3"].activation) == ("3", None)
    assert (points["5"].module, points["5"].saturating) == ("6", "unit")
    assert active_hook_count(model) == 0


# --- thresholds and gates ------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "high"])
def test_thresholds_outside_zero_one_are_refused(bad):
    with pytest.raises(InvalidInputError, match="dead_share"):
        AuditThresholds(dead_share=bad)


def test_unknown_threshold_names_are_refused_with_the_valid_ones():
    with pytest.raises(InvalidInputError, match="valid: dead_share"):
        AuditThresholds.from_mapping({"dead": 0.1})
    assert AuditThresholds.from_mapping({"weight_cosine": 0.9}).weight_cosine == 0.9


def test_gates_parse_and_evaluate(planted_result):
    summary = planted_result.summary()  # 3 dead of 250 filters = 1.2 %
    assert [str(g) for g in parse_gates("dead>5%, redundant>=2")] == ["dead>5%", "redundant>=2"]
    assert not parse_gates("dead>5%")[0].failed(summary)
    assert parse_gates("dead>1%")[0].failed(summary)
    assert parse_gates("positive_layers>0")[0].failed(summary)
    for bad in ("dead", "dead>>5", "zombies>1", ""):
        with pytest.raises(InvalidInputError):
            parse_gates(bad)


# --- checkpoints -------------------------------------------------------------------------------------------


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


# --- what-if ------------------------------------------------------------------------------------------------


def test_zeroing_planted_dead_filters_changes_nothing_and_leaves_the_model_alone(planted_model):
    before = {k: v.clone() for k, v in planted_model.state_dict().items()}
    x, _ = digits_inputs()
    res = what_if_zeroing(planted_model, digits_batches, {k: list(v) for k, v in PLAN.dead.items()}, x[:1])
    assert res.accuracy_before == res.accuracy_after
    assert abs(res.change_points) <= 0.1
    assert all(torch.equal(before[k], planted_model.state_dict()[k]) for k in before)
    assert active_hook_count(planted_model) == 0


def test_zeroing_live_filters_does_change_accuracy(digits_model):
    x, _ = digits_inputs()
    res = what_if_zeroing(digits_model.model, digits_batches, {"features.0": list(range(16))}, x[:1])
    assert res.change_points < -20  # the whole first layer gone: the what-if really zeroes


def test_zeroing_truly_dead_filters_of_trained_digits_keeps_held_out_accuracy(digits_model):
    """Dead on the training split, zeroed, measured on the held-out split: at most 0.1 points."""
    from server.zoo.digits import digits_split

    s = digits_split()
    train = [
        (torch.from_numpy(s.x_train[i : i + 512]), s.y_train[i : i + 512])
        for i in range(0, len(s.x_train), 512)
    ]
    result = audit_model(digits_model.model, train, thresholds=AuditThresholds(dead_share=0.0))
    dead = result.flagged(["dead"])
    assert sum(len(v) for v in dead.values()) >= 10

    def test_batches():
        return [(torch.from_numpy(s.x_test), s.y_test)]

    res = what_if_zeroing(digits_model.model, test_batches, dead, torch.from_numpy(s.x_test[:1]))
    assert abs(res.change_points) <= 0.1


def test_what_if_needs_labels_and_valid_filters(planted_model):
    x, _ = digits_inputs()
    with pytest.raises(InvalidInputError, match="labelled"):
        what_if_zeroing(planted_model, lambda: digits_batches(labelled=False), {"features.2": [4]}, x[:1])
    with pytest.raises(InvalidInputError, match="32 filters"):
        what_if_zeroing(planted_model, digits_batches, {"features.2": [40]}, x[:1])
    with pytest.raises(InvalidInputError, match="not conv/linear"):
        what_if_zeroing(planted_model, digits_batches, {"features.1": [0]}, x[:1])


def test_empty_dataset_is_refused(clean_model):
    with pytest.raises(InvalidInputError, match="empty"):
        audit_model(clean_model, [])
