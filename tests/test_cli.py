"""``convlens audit``: a readable summary, exit 0 on a clean model, 1 when a gate fails, 2 on bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import pytest

from server.cli import EXIT_BAD_INPUT, EXIT_ERROR, EXIT_GATE_FAILED, EXIT_OK, main
from server.config import REPO_ROOT, get_settings
from tests.audit_models import CLEAN_ID as CLEAN
from tests.audit_models import PLAN
from tests.audit_models import PLANTED_ID as PLANTED

pytestmark = pytest.mark.usefixtures("planted_audit_models")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One data dir (with the digits stored once) for the module, via the environment like a CI run."""
    path = tmp_path_factory.mktemp("cli-data")
    mp = pytest.MonkeyPatch()
    mp.setenv("CONVLENS_DATA_DIR", str(path))
    get_settings.cache_clear()
    yield path
    mp.undo()
    get_settings.cache_clear()


def run(argv: list[str]) -> tuple[int, str]:
    out = io.StringIO()
    code = main(argv, out=out)
    return code, out.getvalue()


def test_clean_model_exits_zero_with_a_summary(data_dir, tmp_path):
    code, text = run(
        [
            "audit",
            "--model",
            CLEAN,
            "--dataset",
            "digits",
            "--fail-on",
            "dead>5%",
            "--json",
            str(tmp_path / "a.json"),
        ]
    )
    assert code == EXIT_OK, text
    assert f"ConvLens audit of {CLEAN} on digits: 1797 images" in text
    assert "gate dead>5%: passed (measured 0)" in text
    report = json.loads((tmp_path / "a.json").read_text())
    assert report["summary"]["clean"] is True


def test_crossing_the_gate_exits_non_zero_and_says_why(data_dir, tmp_path):
    code, text = run(
        [
            "audit",
            "--model",
            PLANTED,
            "--dataset",
            "digits",
            "--fail-on",
            "dead>1%",
            "--html",
            str(tmp_path / "a.html"),
        ]
    )
    assert code == EXIT_GATE_FAILED
    assert "gate dead>1%: FAILED (measured 1.2)" in text
    assert "FAILED: dead>1%" in text
    assert f"positive-only layers: {PLAN.positive_layer}" in text
    assert "features.2" in text  # the most flagged layers are named
    assert "<html" in (tmp_path / "a.html").read_text()


def test_a_looser_threshold_and_gate_pass_the_planted_model(data_dir):
    code, text = run(["audit", "--model", PLANTED, "--dataset", "digits", "--fail-on", "dead>2%"])
    assert code == EXIT_OK, text
    assert "gate dead>2%: passed" in text


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--threshold", "dead_share=1.5"], "dead_share"),
        (["--fail-on", "zombies>3"], "gate"),
    ],
)
def test_bad_input_exits_two_with_a_clear_message(data_dir, capsys, argv, needle):
    code = main(["audit", "--model", CLEAN, "--dataset", "digits", *argv], out=io.StringIO())
    assert code == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("convlens: bad input:") and needle in err


def test_unknown_model_exits_two(data_dir, capsys):
    assert (
        main(["audit", "--model", "digits_cnm", "--dataset", "digits"], out=io.StringIO()) == EXIT_BAD_INPUT
    )
    assert "digits_cnn" in capsys.readouterr().err


def test_compare_prints_updates_per_epoch(data_dir):
    code, text = run(["compare", "--model", "digits_cnn", "epoch_01", "epoch_03", "epoch_10"])
    assert code == EXIT_OK
    lines = [line for line in text.splitlines() if "->" in line]
    assert len(lines) == 2 and "per epoch" in lines[0]


def test_python_dash_m_entry_point(tmp_path):
    """``python -m server.cli`` runs the same command (a bad threshold fails before any model loads)."""
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "audit",
            "--model",
            "digits_cnn",
            "--dataset",
            "digits",
            "--threshold",
            "weight_cosine=2",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"CONVLENS_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert proc.returncode == EXIT_BAD_INPUT, proc.stderr
    assert "weight_cosine" in proc.stderr
    help_ = subprocess.run(
        [sys.executable, "-m", "server.cli", "audit", "--help"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert help_.returncode == 0 and "--fail-on" in help_.stdout


def test_an_audit_that_cannot_run_exits_three_without_a_traceback(data_dir, capsys, monkeypatch):
    from server.audits import AuditService

    def broken(*_args, **_kwargs):
        raise FileNotFoundError("datasets/digits/images.zip")

    monkeypatch.setattr(AuditService, "run", broken)
    assert main(["audit", "--model", CLEAN, "--dataset", "digits"], out=io.StringIO()) == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.strip() == "convlens: error: FileNotFoundError: datasets/digits/images.zip"


def test_each_command_gets_its_services_from_the_composition_root(data_dir, monkeypatch):
    from server.services import Services

    built: list[Services] = []
    from_settings = Services.from_settings.__func__

    def spy(cls, settings, **kwargs):
        built.append(from_settings(cls, settings, **kwargs))
        return built[-1]

    monkeypatch.setattr(Services, "from_settings", classmethod(spy))
    code, _text = run(["compare", "--model", "digits_cnn", "epoch_01", "epoch_03"])
    assert code == EXIT_OK
    (services,) = built
    assert services.settings is get_settings() and services.settings.data_dir == data_dir
