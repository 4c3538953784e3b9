"""``convlens models add`` (issue 18): a dry run, then the entry; any error is one line and leaves the
catalogue unchanged."""

from __future__ import annotations

import tomllib

import pytest
from safetensors.torch import save_file

from server.cli import EXIT_BAD_INPUT, EXIT_OK, main
from server.config import get_settings
from server.zoo import catalogue
from server.zoo.user_code import resolve_class
from tests.zoo.contract import assert_model_contract

FIXED = '''
import torch
from torch import nn


class FixedNet(nn.Module):
    """A head that only fits 16x16 inputs: the classic input-size mistake."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.head = nn.Linear(4 * 16 * 16, 3)

    def forward(self, x):
        return self.head(torch.flatten(self.act(self.conv(x)), 1))
'''


@pytest.fixture
def cli_lab(lab, monkeypatch):
    monkeypatch.setenv("CONVLENS_MODELS_DIR", str(lab.models_dir))
    get_settings.cache_clear()
    (lab.code_dir / "fixednet.py").write_text(FIXED)
    net = resolve_class("mynet:MyNet", lab.code_dir)(num_classes=3)
    save_file(
        {k: v.contiguous() for k, v in net.state_dict().items()}, str(lab.models_dir / "mynet.safetensors")
    )
    (lab.models_dir / "labels.txt").write_text("cat\ndog\nfox\n")
    (lab.models_dir / "catalogue.toml").write_text("# the lab's models\n")
    yield lab
    get_settings.cache_clear()


def run(argv, capsys):
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_models_add_registers_a_model_that_passes_the_contract(cli_lab, capsys):
    lab = cli_lab
    code, out, err = run(
        [
            "models",
            "add",
            "--module",
            "mynet:MyNet",
            "--weights",
            str(lab.models_dir / "mynet.safetensors"),
            "--input-size",
            "3,32,32",
            "--labels",
            str(lab.models_dir / "labels.txt"),
            "--kwargs",
            '{"num_classes": 3}',
        ],
        capsys,
    )
    assert code == EXIT_OK, err
    assert "Added 'mynet'" in out
    text = (lab.models_dir / "catalogue.toml").read_text()
    assert text.startswith("# the lab's models\n")  # what the administrator wrote is kept
    (entry,) = tomllib.loads(text)["model"]
    assert entry == {
        "id": "mynet",
        "module": "mynet:MyNet",
        "kwargs": {"num_classes": 3},
        "weights": "mynet.safetensors",
        "input_size": [3, 32, 32],
        "labels": ["cat", "dog", "fox"],
        "num_classes": 3,
    }
    assert catalogue.register_catalogue_models(lab.settings) == ["mynet"]
    lm = lab.zoo().load("mynet")
    assert not lm.untrained and lm.card.labels == ("cat", "dog", "fox")
    assert_model_contract(lm)


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ["--module", "fixednet:FixedNet", "--input-size", "3,32,32"],
            "failed in layer 'head' (Linear): RuntimeError: mat1 and mat2 shapes cannot be multiplied",
        ),
        (
            [
                "--module",
                "mynet:MyNet",
                "--weights",
                "mynet.safetensors",
                "--input-size",
                "3,32,32",
                "--kwargs",
                '{"num_classes": 3, "width": 4}',
            ],
            "shape mismatches",
        ),
        (
            ["--module", "mynet:MyNet", "--input-size", "3,32,32", "--labels", "missing.txt"],
            "labels file 'missing.txt' does not exist",
        ),
        (
            ["--module", "mynet:MyNet", "--input-size", "3,32,32", "--labels", "labels.txt"],
            "The model outputs 10 classes but the labels file names 3",
        ),
        (["--module", "mynet:TheirNet", "--input-size", "3,32,32"], "has no 'TheirNet'"),
        (
            ["--module", "mynet:MyNet", "--input-size", "3,32"],
            "input_size of 'mynet' must be [channels, height, width]",
        ),
        (["--module", "mynet:MyNet", "--id", "digits_cnn", "--input-size", "3,32,32"], "already exists"),
    ],
    ids=["input-size", "checkpoint", "no-labels", "label-count", "no-class", "bad-size", "taken-id"],
)
def test_a_broken_entry_is_one_line_and_leaves_the_catalogue_unchanged(
    cli_lab, capsys, monkeypatch, args, expected
):
    from server.zoo.builtin import ensure_registered

    ensure_registered()
    monkeypatch.chdir(cli_lab.models_dir)  # relative paths as a user types them
    before = (cli_lab.models_dir / "catalogue.toml").read_bytes()
    code, _out, err = run(["models", "add", *args], capsys)
    assert code == EXIT_BAD_INPUT
    assert err.count("\n") == 1 and err.startswith("convlens: bad input: "), err
    assert expected in err, err
    assert (cli_lab.models_dir / "catalogue.toml").read_bytes() == before
    assert sorted(p.name for p in cli_lab.models_dir.iterdir() if p.name.startswith(".catalogue")) == []
