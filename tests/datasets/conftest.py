"""A fresh DatasetStore per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.datasets.store import DatasetStore


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore(tmp_path / "data" / "datasets", tmp_path / "data" / "cache")
