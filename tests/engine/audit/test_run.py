"""The audit of whole models: planted defects found exactly, clean models clean, cleanup."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from server.engine.audit.run import audit_model
from server.engine.audit.thresholds import AuditThresholds
from server.engine.hooks import active_hook_count
from server.errors import InvalidInputError
from tests.audit_models import PLAN, digits_batches, digits_inputs


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


def test_each_layer_reports_its_filters_mean_response(planted_result):
    """The mean over images and positions (what the neuron page shows): 0 for a dead filter after a ReLU."""
    for la in planted_result.layers:
        assert len(la.mean) == la.channels
        np.testing.assert_allclose(la.mean, la.pooled.astype(np.float64).mean(0), atol=1e-5)
        dead = [f.filter for f in planted_result.flags if f.layer == la.name and f.kind == "dead"]
        if la.rectified:
            assert all(la.mean[i] == 0.0 for i in dead)
    assert any(f.kind == "dead" for f in planted_result.flags)


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


def test_separability_curve_rises_on_trained_digits(digits_result):
    result = digits_result
    purity = {layer.name: layer.separability for layer in result.layers}
    assert all(0.0 <= p <= 1.0 for p in purity.values())
    assert purity["classifier.4"] > purity["features.0"] + 0.2
    # the trained model really has dead ReLU units, and the audit says so
    assert result.summary()["counts"]["dead"] > 0


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


def test_empty_dataset_is_refused(clean_model):
    with pytest.raises(InvalidInputError, match="empty"):
        audit_model(clean_model, [])
