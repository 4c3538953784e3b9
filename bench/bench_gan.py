"""GAN benchmark (issue 16), measured in one run on this machine: generating 64 images and scoring them
(i) in the engine (:func:`server.engine.gan.generate_and_score`: latents, G, D, softmax, to numpy) and
(ii) in the service behind POST /gan/{id}/generate (plus the PNG grid and 64 .npy artifacts written),
each against a bare generator-plus-discriminator forward of the same batch. Target: (i) <= 1.5x.
Three rounds, each interleaving the variants (median of 30 calls); the median and spread of the
rounds' ratios are printed, with the load average.
"""

from __future__ import annotations

import itertools
import os
import statistics
import sys
import tempfile
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench._timing import interleaved_medians
from server.config import REPO_ROOT, Settings
from server.engine.gan import generate_and_score, seeded_latents
from server.services import Services

N = 64


def main() -> None:
    # the nets are tiny: with two threads on a loaded 2-core box the bare forward itself spins (300+ ms)
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "1")))
    print(f"load average before: {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp), models_dir=REPO_ROOT / "models", preload_default_model=False)
        services = Services.from_settings(settings)
        svc = services.gan
        g, d = svc.halves("dcgan_digits")
        print(f"device: {g.device}, torch threads: {torch.get_num_threads()}")
        z = g.to_input(seeded_latents(0, N, svc.latent_dim("dcgan_digits"))[:, :, None, None])
        seeds = itertools.count(1000)

        def bare() -> None:
            with torch.inference_mode():
                d.model(g.model(z))

        def engine() -> None:
            generate_and_score(g.model, d.model, seeded_latents(next(seeds), N, z.shape[1]), g.device)

        def service() -> None:
            svc.generate("dcgan_digits", next(seeds), N)

        rounds = []
        for _ in range(3):
            m = interleaved_medians(
                {"bare": bare, "engine": engine, "service": service}, repeats=30, warmup=3
            )
            rounds.append(m)
            print(
                f"bare G+D {m['bare'] * 1e3:.2f} ms | engine {m['engine'] * 1e3:.2f} ms "
                f"({m['engine'] / m['bare']:.2f}x) | service incl. files {m['service'] * 1e3:.2f} ms "
                f"({m['service'] / m['bare']:.2f}x)"
            )
        for what in ("engine", "service"):
            ratios = [r[what] / r["bare"] for r in rounds]
            print(
                f"{what}/bare: median {statistics.median(ratios):.2f}x, spread {min(ratios):.2f}-{max(ratios):.2f}x"
                + (" (target <= 1.5x)" if what == "engine" else "")
            )
        services.shutdown()
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
