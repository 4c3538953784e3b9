"""How ConvLens trains its own models (digits_cnn, dcgan_digits, seq_rnn/lstm/gru) so that every x86-64
machine gets the same weights from the same seed.

A seed fixes the random numbers, not the rounding. PyTorch, MKL and oneDNN pick their kernels for the CPU
they find (AVX2 or AVX-512 matrix blocking, vectorised tanh), and over thousands of optimiser steps a
one-ulp difference grows into a different model: the same seeded recipe gave seq_rnn a held-out accuracy
of 0.342 on an AVX-512 machine and 0.622 on an AVX2 one. So training runs in its own process with every
runtime dispatch pinned to the portable path (:data:`REPRODUCIBLE_ENV`), oneDNN off and one thread. The
serving process keeps its fast kernels; only the few minutes of training pay for the portable ones.

``python -m server.zoo.<module> [out_dir]`` re-executes itself under that environment when it is not set
(:func:`main`), and the zoo's train-on-first-use goes through :func:`train_in_subprocess`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPRODUCIBLE_ENV = {
    "ATEN_CPU_CAPABILITY": "default",  # PyTorch's kernels without runtime ISA dispatch
    "MKL_CBWR": "COMPATIBLE",  # MKL's conditional numerical reproducibility: one code path on any x86-64
    "ONEDNN_MAX_CPU_ISA": "SSE41",  # in case anything still reaches oneDNN (it is disabled below)
    "OMP_NUM_THREADS": "1",  # reductions split over threads would depend on the core count
    "MKL_NUM_THREADS": "1",
}

_ROOT = Path(__file__).resolve().parents[2]


def is_reproducible(env: dict[str, str] | os._Environ = os.environ) -> bool:
    return all(env.get(k) == v for k, v in REPRODUCIBLE_ENV.items())


def reproducible_env(**extra: str) -> dict[str, str]:
    """This process's environment with the portable-kernel settings, and ConvLens importable."""
    path = os.pathsep.join(p for p in (str(_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, **REPRODUCIBLE_ENV, "PYTHONPATH": path, **extra}


def train_in_subprocess(module: str, out_dir: Path) -> None:
    """Run ``python -m module out_dir`` under :data:`REPRODUCIBLE_ENV`; raise with its last output on failure."""
    done = subprocess.run(
        [sys.executable, "-m", module, str(out_dir)],
        env=reproducible_env(),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-5:]
        raise RuntimeError(f"training {module} failed (exit {done.returncode}): " + " | ".join(tail))


def configure_torch() -> None:
    """The in-process half of the portable setup: oneDNN off, one thread."""
    import torch

    torch.backends.mkldnn.enabled = False  # oneDNN's convolutions and RNNs pick kernels by ISA
    torch.set_num_threads(1)


def main(module: str, default_dir: Callable[[], Path], train: Callable[[Path], Any]) -> Any:
    """The ``__main__`` of a training module: ``python -m module [out_dir]``.

    Re-executes itself under :data:`REPRODUCIBLE_ENV` when that is not this process's environment (the
    settings must be in place before torch runs its first kernel), then trains into ``out_dir``."""
    if not is_reproducible():
        os.execve(sys.executable, [sys.executable, "-m", module, *sys.argv[1:]], reproducible_env())
    configure_torch()
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else default_dir()
    return train(out_dir)
