"""The audit's models and results, computed once for the whole package of audit tests."""

from __future__ import annotations

import pytest
from torch import nn

from server.engine.audit.run import audit_model
from tests.audit_models import clean_digits_model, digits_batches, planted_digits_model


@pytest.fixture(scope="package")
def clean_model() -> nn.Module:
    return clean_digits_model()


@pytest.fixture(scope="package")
def planted_model() -> nn.Module:
    return planted_digits_model()


@pytest.fixture(scope="package")
def planted_result(planted_model):
    return audit_model(planted_model, digits_batches())


@pytest.fixture(scope="package")
def clean_result(clean_model):
    return audit_model(clean_model, digits_batches())


@pytest.fixture(scope="package")
def digits_result(digits_model):
    return audit_model(digits_model.model, digits_batches())
