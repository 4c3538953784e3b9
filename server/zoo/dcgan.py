"""dcgan_digits: a small DCGAN trained by ConvLens itself on scikit-learn's 8x8 digits.

The generator maps a latent vector (``LATENT_DIM`` x 1 x 1, standard normal) to an 8x8 grayscale digit
in [-1, 1] (tanh; bright ink on dark, as the data set); the discriminator maps such an image to two
logits ``[0, l]`` ("fake", "real"), so that its softmax is ``sigmoid(l)`` = D's score and every
classifier technique (predictions, Grad-CAM of "real", DeepVis) applies unchanged. Training is the
standard recipe of Radford et al. (Adam 2e-4, beta1 0.5, BCE, batch norm, LeakyReLU in D), seeded, with
snapshots at fixed steps and the game's numbers at each. Run ``python -m server.zoo.dcgan`` to (re)train.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

LATENT_DIM = 32
IMAGE_SIZE = 8
SEED = 0
STEPS = 1500
BATCH = 64
SNAPSHOT_STEPS = (25, 100, 250, 500, 750, 1000, 1250, 1500)
EVAL_LATENTS = 512  # fixed latents whose D score is recorded at each snapshot
SAMPLE_SEEDS = tuple(range(16))  # the fixed seeds of each snapshot's sample grid


class Generator(nn.Module):
    """Latent (N, LATENT_DIM, 1, 1) -> (N, 1, 8, 8) in [-1, 1]: three transposed convs (2 -> 4 -> 8)."""

    def __init__(self, latent_dim: int = LATENT_DIM, width: int = 32) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.ConvTranspose2d(latent_dim, width * 2, 2, 1, 0, bias=False),  # 2x2
            nn.BatchNorm2d(width * 2),
            nn.ReLU(),
            nn.ConvTranspose2d(width * 2, width, 4, 2, 1, bias=False),  # 4x4
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),  # 8x8
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() == 2:
            z = z[:, :, None, None]
        return self.net(z)


class Discriminator(nn.Module):
    """(N, 1, 8, 8) in [-1, 1] -> logits (N, 2) = [0, l]: softmax gives P(real) = sigmoid(l)."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),  # 4x4
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, width * 2, 4, 2, 1, bias=False),  # 2x2
            nn.BatchNorm2d(width * 2),
            nn.LeakyReLU(0.2),
        )
        self.classifier = nn.Sequential(nn.Conv2d(width * 2, 1, 2, 1, 0), nn.Flatten())  # (N, 1)

    def real_logit(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))[:, 0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logit = self.classifier(self.features(x))
        return torch.cat([torch.zeros_like(logit), logit], dim=1)


def real_digits() -> torch.Tensor:
    """All 1,797 sklearn digits as (N, 1, 8, 8) in [-1, 1] (0..16 scaled)."""
    from sklearn.datasets import load_digits

    x = torch.from_numpy((load_digits().images / 16.0).astype(np.float32))[:, None]
    return x * 2 - 1


def latents(seed: int, n: int, latent_dim: int = LATENT_DIM) -> torch.Tensor:
    """``n`` standard-normal latents (n, latent_dim) from ``seed`` (the engine's one definition)."""
    from server.engine.gan import seeded_latents

    return seeded_latents(seed, n, latent_dim)


def _init(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}


@torch.no_grad()
def _mean_scores(g: Generator, d: Discriminator, real: torch.Tensor, z: torch.Tensor) -> tuple[float, float]:
    g.eval()
    d.eval()
    d_real = torch.sigmoid(d.real_logit(real)).mean().item()
    d_fake = torch.sigmoid(d.real_logit(g(z))).mean().item()
    g.train()
    d.train()
    return d_real, d_fake


def train(out_dir: Path, steps: int = STEPS, seed: int = SEED, snapshot_steps=SNAPSHOT_STEPS) -> dict:
    """Train deterministically; write generator/discriminator safetensors per snapshot and at the end,
    and training.json with the losses and D's mean scores on real and generated digits per snapshot."""

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convs: one thread is fastest, and two spin on a shared 2-core box
    try:
        return _train(out_dir, steps, seed, snapshot_steps)
    finally:
        torch.set_num_threads(threads)


def _train(out_dir: Path, steps: int, seed: int, snapshot_steps) -> dict:
    from safetensors.torch import save_file

    started = time.monotonic()
    torch.manual_seed(seed)
    np.random.seed(seed)
    real = real_digits()
    g, d = Generator(), Discriminator()
    g.apply(_init)
    d.apply(_init)
    opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    eval_z = latents(seed + 1, EVAL_LATENTS)
    eval_real = real[
        torch.randperm(len(real), generator=torch.Generator().manual_seed(seed + 2))[:EVAL_LATENTS]
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    snapshots: list[dict] = []
    window_g: list[float] = []
    window_d: list[float] = []
    perm = torch.randperm(len(real), generator=gen)
    cursor = 0
    for step in range(1, steps + 1):
        if cursor + BATCH > len(real):
            perm, cursor = torch.randperm(len(real), generator=gen), 0
        x = real[perm[cursor : cursor + BATCH]]
        cursor += BATCH
        z = torch.randn(BATCH, LATENT_DIM, generator=gen)
        ones, zeros = torch.ones(BATCH), torch.zeros(BATCH)
        # D: real -> 1, fake -> 0
        opt_d.zero_grad()
        fake = g(z)
        loss_d = bce(d.real_logit(x), ones) + bce(d.real_logit(fake.detach()), zeros)
        loss_d.backward()
        opt_d.step()
        # G: the non-saturating loss, fake -> 1
        opt_g.zero_grad()
        loss_g = bce(d.real_logit(fake), ones)
        loss_g.backward()
        opt_g.step()
        window_g.append(loss_g.item())
        window_d.append(loss_d.item())
        if step in snapshot_steps or step == steps:
            d_real, d_fake = _mean_scores(g, d, eval_real, eval_z)
            name = f"step_{step:05d}"
            save_file(_state(g), str(out_dir / f"{name}_generator.safetensors"))
            save_file(_state(d), str(out_dir / f"{name}_discriminator.safetensors"))
            snapshots.append(
                {
                    "step": step,
                    "name": name,
                    "g_loss": float(np.mean(window_g)),
                    "d_loss": float(np.mean(window_d)),
                    "d_real": d_real,
                    "d_fake": d_fake,
                }
            )
            window_g, window_d = [], []
    g.eval()
    d.eval()
    record = {
        "seed": seed,
        "steps": steps,
        "batch": BATCH,
        "latent_dim": LATENT_DIM,
        "image_size": IMAGE_SIZE,
        "sample_seeds": list(SAMPLE_SEEDS),
        "eval_latents": EVAL_LATENTS,
        "train_seconds": round(time.monotonic() - started, 1),
        "snapshots": snapshots,
    }
    (out_dir / "training.json").write_text(json.dumps(record, indent=2))
    for what, model in (("generator", g), ("discriminator", d)):
        tmp = out_dir / f"{what}.safetensors.tmp"
        save_file(_state(model), str(tmp))
        tmp.replace(out_dir / f"{what}.safetensors")
    # last: its presence means training finished
    (out_dir / "final.json").write_text(json.dumps({"steps": steps, "seed": seed}))
    return record


if __name__ == "__main__":
    from server.config import get_settings
    from server.zoo.training import main

    result = main("server.zoo.dcgan", lambda: get_settings().models_dir / "dcgan_digits", train)
    print(json.dumps({k: v for k, v in result.items() if k != "snapshots"}, indent=2))
    for s in result["snapshots"]:
        print(s)
