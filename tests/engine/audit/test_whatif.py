"""What-if zeroing: dead filters change nothing, live ones do; the shared model is left alone."""

from __future__ import annotations

import pytest
import torch

from server.engine.audit.run import audit_model
from server.engine.audit.thresholds import AuditThresholds
from server.engine.audit.whatif import what_if_zeroing
from server.engine.hooks import active_hook_count
from server.errors import InvalidInputError
from tests.audit_models import PLAN, digits_batches, digits_inputs


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
