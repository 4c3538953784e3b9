"""server/zoo/training.py: ConvLens's own models train to the same bits whatever kernels the CPU offers."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from server.zoo.training import REPRODUCIBLE_ENV, is_reproducible, reproducible_env, train_in_subprocess

REPO_ROOT = Path(__file__).resolve().parents[2]

# Two epochs of seq_rnn: enough optimiser steps for a one-ulp difference to show in the weights.
TRAIN = """
import sys
from pathlib import Path
from server.zoo.training import configure_torch
configure_torch()
from server.zoo.recurrent import train_one
train_one("rnn", Path(sys.argv[1]), epochs=2)
"""


def _train(out: Path, env: dict[str, str]) -> str:
    subprocess.run([sys.executable, "-c", TRAIN, str(out)], env=env, check=True, capture_output=True)
    return hashlib.sha256((out / "final.safetensors").read_bytes()).hexdigest()


@pytest.mark.slow
def test_the_portable_setup_gives_the_same_weights_whatever_instruction_set_mkl_may_use(tmp_path):
    """A CPU with fewer instructions than this one is simulated by capping MKL's: AVX2 (a Zen 3 or a
    Haswell) and SSE4.2 give the very bits of an unrestricted run once the portable setup is on."""
    digests = {
        isa: _train(tmp_path / isa, reproducible_env(MKL_ENABLE_INSTRUCTIONS=isa))
        for isa in ("AVX512", "AVX2", "SSE4_2")
    }
    assert len(set(digests.values())) == 1, digests


@pytest.mark.slow
def test_without_the_portable_setup_the_kernels_change_the_weights(tmp_path):
    """The control: PyTorch's scalar kernels against its AVX2 ones give different weights from the same
    seed, which is why training needs the portable setup at all."""
    plain = {k: v for k, v in reproducible_env().items() if k not in ("ATEN_CPU_CAPABILITY", "MKL_CBWR")}
    a = _train(tmp_path / "scalar", {**plain, "ATEN_CPU_CAPABILITY": "default"})
    b = _train(tmp_path / "avx2", {**plain, "ATEN_CPU_CAPABILITY": "avx2"})
    assert a != b


@pytest.mark.slow
def test_first_use_training_gives_the_weights_make_models_gave(tmp_path):
    """The zoo's train-on-first-use and `make models` are one mechanism: the same bits for digits_cnn."""
    shipped = REPO_ROOT / "models" / "digits_cnn" / "final.safetensors"
    if not shipped.is_file():
        pytest.skip("models/digits_cnn is trained by `make models`")
    train_in_subprocess("server.zoo.digits", tmp_path / "digits_cnn")
    assert (tmp_path / "digits_cnn" / "final.safetensors").read_bytes() == shipped.read_bytes()


def test_a_failed_training_raises_with_its_last_output(tmp_path):
    with pytest.raises(RuntimeError, match="No module named"):
        train_in_subprocess("server.zoo.no_such_trainer", tmp_path)
    assert not any(tmp_path.iterdir())


def test_the_environment_is_recognised():
    assert is_reproducible(reproducible_env())
    assert not is_reproducible({**reproducible_env(), "MKL_CBWR": "AUTO"})
    assert set(REPRODUCIBLE_ENV) <= set(reproducible_env())
