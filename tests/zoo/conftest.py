"""A lab's catalogue in a temporary models folder (never the repository's models/catalogue.toml)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from server.config import Settings
from server.zoo import catalogue
from server.zoo.builtin import ensure_registered
from server.zoo.manager import ZooManager

MYNET = '''
import torch
from torch import nn


class MyNet(nn.Module):
    """A small CNN with BatchNorm (for num_batches_tracked) as a lab would write it."""

    def __init__(self, num_classes=10, width=8):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.BatchNorm2d(2 * width), nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(self.features(x), 1))
'''


@dataclass
class Lab:
    settings: Settings
    models_dir: Path
    code_dir: Path

    def register(self, toml: str) -> list[str]:
        (self.models_dir / "catalogue.toml").write_text(toml)
        return catalogue.register_catalogue_models(self.settings)

    def zoo(self) -> ZooManager:
        return ZooManager("cpu")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    ensure_registered()  # the built-ins first, as the composition root does
    models_dir = tmp_path / "models"
    code_dir = models_dir / "code"
    code_dir.mkdir(parents=True)
    (code_dir / "mynet.py").write_text(MYNET)
    settings = Settings(models_dir=models_dir, data_dir=tmp_path / "data", preload_default_model=False)
    try:
        yield Lab(settings, models_dir, code_dir)
    finally:
        catalogue.register_catalogue_models()  # back to the repository's catalogue
