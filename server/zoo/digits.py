"""digits_cnn: a small CNN trained by ConvLens itself on scikit-learn's 8x8 digits, with snapshots.

Images are 8x8 grayscale with the ink bright on a dark background (as in the data set, whose
values 0..16 are scaled to 0..1). Run ``python -m server.zoo.digits`` to (re)train.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

SNAPSHOT_EPOCHS = (1, 3, 10, 30)
EPOCHS = 30
SEED = 0


class DigitsCNN(nn.Module):
    """Three 3x3 conv layers with ReLU and two 2x2 max-pools, then a two-layer classifier."""

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Dropout(0.2), nn.Linear(128, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


@dataclass(frozen=True)
class DigitsSplit:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def digits_split(seed: int = SEED) -> DigitsSplit:
    """The digits as (N, 1, 8, 8) floats in [0, 1], split 80/20 stratified with a fixed seed."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]
    y = d.target.astype(np.int64)
    xtr, xte, ytr, yte = train_test_split(x, y, test_size=0.2, stratify=y, random_state=seed)
    return DigitsSplit(xtr, ytr, xte, yte)


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.inference_mode():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


def train(out_dir: Path, epochs: int = EPOCHS, seed: int = SEED) -> dict:
    """Train deterministically; write final.safetensors, epoch_XX.safetensors snapshots and metrics.json."""
    from safetensors.torch import save_file

    torch.manual_seed(seed)
    np.random.seed(seed)
    split = digits_split(seed)
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    xtr, ytr = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    out_dir.mkdir(parents=True, exist_ok=True)
    history = []
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), 64):
            idx = perm[i : i + 64]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()
        acc = accuracy(model, split.x_test, split.y_test)
        history.append({"epoch": epoch, "test_accuracy": acc})
        if epoch in SNAPSHOT_EPOCHS:
            save_file(_contiguous(model), str(out_dir / f"epoch_{epoch:02d}.safetensors"))
    model.eval()
    tmp = out_dir / "final.safetensors.tmp"
    save_file(_contiguous(model), str(tmp))
    metrics = {
        "seed": seed,
        "epochs": epochs,
        "test_accuracy": history[-1]["test_accuracy"],
        "history": history,
    }
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    tmp.replace(out_dir / "final.safetensors")  # last: its presence means training finished
    return metrics


def _contiguous(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def snapshot_paths(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob("epoch_*.safetensors"))


if __name__ == "__main__":
    from server.config import get_settings
    from server.zoo.training import main

    metrics = main("server.zoo.digits", lambda: get_settings().models_dir / "digits_cnn", train)
    print(json.dumps(metrics, indent=2)[:400])
