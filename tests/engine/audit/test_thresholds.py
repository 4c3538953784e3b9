"""Threshold validation."""

from __future__ import annotations

import pytest

from server.engine.audit.thresholds import AuditThresholds
from server.errors import InvalidInputError


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan"), "high"])
def test_thresholds_outside_zero_one_are_refused(bad):
    with pytest.raises(InvalidInputError, match="dead_share"):
        AuditThresholds(dead_share=bad)


def test_unknown_threshold_names_are_refused_with_the_valid_ones():
    with pytest.raises(InvalidInputError, match="valid: dead_share"):
        AuditThresholds.from_mapping({"dead": 0.1})
    assert AuditThresholds.from_mapping({"weight_cosine": 0.9}).weight_cosine == 0.9
