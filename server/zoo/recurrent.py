"""seq_rnn, seq_lstm and seq_gru: one-layer recurrent classifiers trained by ConvLens on pixel-by-pixel digits.

Each of scikit-learn's 8x8 digits (values 0..16 scaled to 0..1, as for digits_cnn) is read as a 64-step
sequence of single pixels. The reading order is fixed and stored on the card (:data:`READING_ORDER`):
the pixels sorted by how much they vary over the training images, most informative first, so the
last steps are the nearly blank border and the answer needs the early pixels (the long-memory
setting of pixel-by-pixel MNIST, Le et al. 2015). The three models share one recipe (seed, optimiser,
learning rate, epochs, batch, clipping); the LSTM's forget-gate bias starts at 1 (Jozefowicz et al.
2015), the standard initialisation. Run ``python -m server.zoo.recurrent`` to (re)train all three.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from server.zoo.digits import DigitsSplit, digits_split

CELLS = ("rnn", "lstm", "gru")
MODEL_IDS = {cell: f"seq_{cell}" for cell in CELLS}
GATES = {"rnn": (), "lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new")}
HIDDEN = 64
SEQ_LEN = 64
SEED = 0
EPOCHS = 80
LR = 2e-3
BATCH = 32
CLIP = 1.0
SNAPSHOT_EPOCHS = (1, 5, 20, 40, 80)


def _reading_order() -> tuple[int, ...]:
    """Pixel indices (row-major 0..63) by decreasing standard deviation over the training split."""
    split = digits_split(SEED)
    std = split.x_train.reshape(len(split.x_train), -1).std(0)
    return tuple(int(i) for i in np.argsort(-std, kind="stable"))


READING_ORDER: tuple[int, ...] = ()  # filled on first use by reading_order()


def reading_order() -> tuple[int, ...]:
    global READING_ORDER
    if not READING_ORDER:
        READING_ORDER = _reading_order()
    return READING_ORDER


class SequenceClassifier(nn.Module):
    """A one-layer ``nn.RNN`` (tanh), ``nn.LSTM`` or ``nn.GRU`` over the pixel sequence, read out from its last hidden state.

    ``forward`` takes images (N, 1, 8, 8) like digits_cnn, or sequences (N, T) / (N, T, 1); the image
    is turned into the sequence by ``to_sequence`` (the reading order). ``final`` is an identity on
    the last hidden state, so layer ``final`` gives the final hidden states as features.
    """

    def __init__(
        self, cell: str, hidden: int = HIDDEN, num_classes: int = 10, order: tuple[int, ...] | None = None
    ):
        super().__init__()
        if cell not in CELLS:
            raise ValueError(f"cell must be one of {CELLS}, not {cell!r}")
        self.cell = cell
        rnn_cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[cell]
        self.rnn = rnn_cls(1, hidden, batch_first=True)
        self.final = nn.Identity()
        self.readout = nn.Linear(hidden, num_classes)
        order = reading_order() if order is None else order
        self.register_buffer("order", torch.tensor(order, dtype=torch.long), persistent=False)
        if cell == "lstm":  # forget-gate bias 1 (b_ih + b_hh = 1 on the forget slice)
            with torch.no_grad():
                self.rnn.bias_ih_l0[hidden : 2 * hidden].fill_(1.0)
                self.rnn.bias_hh_l0[hidden : 2 * hidden].fill_(0.0)

    @property
    def hidden_size(self) -> int:
        return self.rnn.hidden_size

    def to_sequence(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 1, 8, 8) images -> (N, T, 1) in the reading order; (N, T) or (N, T, 1) sequences pass through."""
        if x.dim() == 4:
            x = x.flatten(1)[:, self.order]
        if x.dim() == 2:
            x = x.unsqueeze(-1)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.to_sequence(x))
        return self.readout(self.final(out[:, -1]))


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    model.eval()
    with torch.inference_mode():
        pred = model(torch.from_numpy(x)).argmax(1).numpy()
    return float((pred == y).mean())


def train_one(
    cell: str, out_dir: Path, *, epochs: int = EPOCHS, seed: int = SEED, split: DigitsSplit | None = None
) -> dict:
    """Train one model with the shared recipe; write final.safetensors, epoch_XX snapshots and metrics.json."""
    from safetensors.torch import save_file

    split = split or digits_split(seed)
    torch.manual_seed(seed)
    model = SequenceClassifier(cell)
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(seed)
    xtr, ytr = torch.from_numpy(split.x_train), torch.from_numpy(split.y_train)
    out_dir.mkdir(parents=True, exist_ok=True)
    history = []
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        perm = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), BATCH):
            idx = perm[i : i + BATCH]
            opt.zero_grad()
            loss = loss_fn(model(xtr[idx]), ytr[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), CLIP)
            opt.step()
        acc = accuracy(model, split.x_test, split.y_test)
        history.append({"epoch": epoch, "test_accuracy": acc, "loss": float(loss.detach())})
        if epoch in SNAPSHOT_EPOCHS:
            save_file(_contiguous(model), str(out_dir / f"epoch_{epoch:02d}.safetensors"))
    model.eval()
    metrics = {
        "model": MODEL_IDS[cell],
        "cell": cell,
        "seed": seed,
        "epochs": epochs,
        "recipe": {"optimizer": "Adam", "lr": LR, "batch": BATCH, "clip_grad_norm": CLIP, "forget_bias": 1.0},
        "hidden_size": model.hidden_size,
        "input_length": SEQ_LEN,
        "reading_order": list(reading_order()),
        "test_accuracy": history[-1]["test_accuracy"],
        "train_seconds": round(time.perf_counter() - start, 1),
        "history": history,
    }
    tmp = out_dir / "final.safetensors.tmp"
    save_file(_contiguous(model), str(tmp))
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
    tmp.replace(out_dir / "final.safetensors")  # last: its presence means training finished
    return metrics


def train_all(models_dir: Path, *, epochs: int = EPOCHS, seed: int = SEED) -> dict[str, dict]:
    split = digits_split(seed)
    return {
        MODEL_IDS[c]: train_one(c, models_dir / MODEL_IDS[c], epochs=epochs, seed=seed, split=split)
        for c in CELLS
    }


def _contiguous(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


def snapshot_paths(out_dir: Path) -> list[Path]:
    return sorted(out_dir.glob("epoch_*.safetensors"))


if __name__ == "__main__":
    from server.config import get_settings
    from server.zoo.training import main

    for model_id, m in main("server.zoo.recurrent", lambda: get_settings().models_dir, train_all).items():
        print(model_id, "held-out accuracy", m["test_accuracy"], f"({m['train_seconds']} s)")
