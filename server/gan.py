"""GANs (issue 16): generate and score, interpolate, the training game per snapshot, and the mode report.

Application logic over :mod:`server.engine.gan` and the zoo: a GAN is a pair of zoo models (its
generator and discriminator, :data:`server.zoo.builtin.GANS`); images and arrays are stored as
artifacts. No web imports.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from server.artifacts import ArtifactStore, content_key
from server.config import Settings
from server.engine.gan import (
    check_latents,
    generate_and_score,
    image_grid,
    interpolate_latents,
    mode_report,
    seeded_latents,
)
from server.engine.imaging import npy_bytes, png_bytes
from server.errors import InvalidInputError, NotFoundError
from server.zoo.builtin import GANS
from server.zoo.manager import LoadedModel, ZooManager

MODE_CLASSIFIER = "digits_cnn"  # judges the digits GAN's samples
GRID_UPSCALE = 256


class GanService:
    """The GAN routes' use cases over one zoo and artifact store."""

    def __init__(self, settings: Settings, zoo: ZooManager, artifacts: ArtifactStore) -> None:
        self.settings = settings
        self.zoo = zoo
        self.artifacts = artifacts

    # --- the pair ---------------------------------------------------------------------------------------

    def halves(self, gan_id: str) -> tuple[LoadedModel, LoadedModel]:
        if gan_id not in GANS:
            raise NotFoundError.with_suggestions("GAN", gan_id, GANS)
        g_id, d_id = GANS[gan_id]
        return self.zoo.load(g_id), self.zoo.load(d_id)

    def latent_dim(self, gan_id: str) -> int:
        if gan_id not in GANS:
            raise NotFoundError.with_suggestions("GAN", gan_id, GANS)
        return self.zoo.card(GANS[gan_id][0]).input_size[0]

    def describe(self, gan_id: str) -> dict[str, Any]:
        g_id, d_id = GANS[gan_id]
        return {
            "gan": gan_id,
            "generator": g_id,
            "discriminator": d_id,
            "latent_dim": self.latent_dim(gan_id),
        }

    # --- generate / interpolate ---------------------------------------------------------------------------

    def _run(self, gan_id: str, z: torch.Tensor, what: str, cols: int | None) -> dict[str, Any]:
        g, d = self.halves(gan_id)
        with g.lock, d.lock:
            out = generate_and_score(g.model, d.model, g.to_input(z[:, :, None, None]))
        key = content_key(g.cache_key, d.cache_key, what, z.numpy().tobytes())
        grid = image_grid(out.images, cols=cols)
        self.artifacts.put(key, "grid.png", png_bytes(grid, upscale_to=GRID_UPSCALE))
        images = []
        for i, (img, score) in enumerate(zip(out.images, out.scores, strict=True)):
            self.artifacts.put(key, f"image_{i}.npy", npy_bytes(img[0]))
            images.append(
                {"index": i, "d_score": float(score), "npy_url": self.artifacts.url(key, f"image_{i}.npy")}
            )
        return {
            **self.describe(gan_id),
            "n": len(images),
            "grid_url": self.artifacts.url(key, "grid.png"),
            "images": images,
            "mean_d_score": float(out.scores.mean()),
            "latent": z.tolist(),
        }

    def generate(
        self, gan_id: str, seed: int = 0, n: int = 16, latent: list[list[float]] | None = None
    ) -> dict[str, Any]:
        dim, limit = self.latent_dim(gan_id), self.settings.gan_max_images
        if latent is not None:
            z = check_latents(latent, dim, limit)
        else:
            if not 1 <= n <= limit:
                raise InvalidInputError(f"n must be between 1 and {limit}; got {n}.")
            z = seeded_latents(seed, n, dim)
        out = self._run(gan_id, z, "generate", None)
        out["seed"] = None if latent is not None else seed
        return out

    def interpolate(self, gan_id: str, seed_a: int, seed_b: int, steps: int = 8) -> dict[str, Any]:
        dim, limit = self.latent_dim(gan_id), self.settings.gan_max_steps
        if not 2 <= steps <= limit:
            raise InvalidInputError(f"steps must be between 2 and {limit} (both ends included); got {steps}.")
        z = interpolate_latents(seeded_latents(seed_a, 1, dim)[0], seeded_latents(seed_b, 1, dim)[0], steps)
        out = self._run(gan_id, z, "interpolate", steps)
        out.update(seed_a=seed_a, seed_b=seed_b, steps=steps)
        return out

    # --- training -----------------------------------------------------------------------------------------

    def _models_dir(self, gan_id: str) -> Path:
        self.halves(gan_id)  # 404 for an unknown GAN; trains on first use
        return self.settings.models_dir / gan_id

    def training(self, gan_id: str) -> dict[str, Any]:
        """Per snapshot: G and D losses, D's mean score on real and generated digits, a sample grid."""
        folder = self._models_dir(gan_id)
        record = json.loads((folder / "training.json").read_text())
        g, _d = self.halves(gan_id)
        seeds = record["sample_seeds"]
        z = torch.cat([seeded_latents(s, 1, record["latent_dim"]) for s in seeds])
        snapshots = []
        for snap in record["snapshots"]:
            key = content_key(g.cache_key, "training", snap["name"], json.dumps(seeds))
            if not self.artifacts.exists(key, "samples.png"):
                images = self._snapshot_samples(folder / f"{snap['name']}_generator.safetensors", z)
                self.artifacts.put(key, "samples.png", png_bytes(image_grid(images), upscale_to=GRID_UPSCALE))
            snapshots.append({**snap, "samples_url": self.artifacts.url(key, "samples.png")})
        return {
            **self.describe(gan_id),
            "steps": record["steps"],
            "seed": record["seed"],
            "sample_seeds": seeds,
            "train_seconds": record.get("train_seconds"),
            "snapshots": snapshots,
        }

    def _snapshot_samples(self, path: Path, z: torch.Tensor) -> np.ndarray:
        from server.zoo.checkpoints import load_into, read_state_dict

        g_id = GANS[path.parent.name][0]
        model = self.zoo.spec(g_id).build()
        load_into(model, read_state_dict(path), source=f"snapshot '{path.name}'")
        model.eval()
        with torch.inference_mode():
            return ((model(z[:, :, None, None]) + 1) / 2).clamp(0, 1).numpy()

    # --- modes --------------------------------------------------------------------------------------------

    def modes(self, gan_id: str, n: int = 1000, seed: int = 0) -> dict[str, Any]:
        """digits_cnn classifies ``n`` generated images: class histogram, mean confidence, collapse warning."""
        limit = self.settings.gan_max_mode_samples
        if not 10 <= n <= limit:
            raise InvalidInputError(f"n must be between 10 and {limit}; got {n}.")
        z = seeded_latents(seed, n, self.latent_dim(gan_id))
        g, d = self.halves(gan_id)
        clf = self.zoo.load(MODE_CLASSIFIER)
        with g.lock, d.lock:
            out = generate_and_score(g.model, d.model, g.to_input(z[:, :, None, None]))
        with clf.lock, torch.inference_mode():
            logits = clf.model(clf.to_input(torch.from_numpy(out.images)))
        probs = torch.softmax(logits.float(), 1).cpu().numpy()
        report = mode_report(probs, clf.card.labels)
        return {
            **self.describe(gan_id),
            "classifier": MODE_CLASSIFIER,
            "n": n,
            "seed": seed,
            "labels": list(clf.card.labels),
            **report.to_dict(),
            "classes_present": len(clf.card.labels) - len(report.missing),
            "mean_d_score": float(out.scores.mean()),
        }
