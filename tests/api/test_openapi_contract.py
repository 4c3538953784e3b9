"""The OpenAPI contract is true (issue 12): schemathesis with all checks against a real `python -m server`.

Fixed seed, at most 5 examples per operation and phase, one worker: about three minutes on 2 cores.
`schemathesis_hooks.py` gives schema-valid requests valid upload contents (a PNG for an image field, a
zip of class folders for an archive), so that the upload routes' success answers are checked against
their response models too. `schemathesis-baseline.json` next to this file lists the failures still
accepted, each (operation, check, status): schema-valid requests refused for what no schema can state -
cross-field rules of multipart forms and rules that depend on stored state (a model's kind, a data
set's labels). Any other failure fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import api_process

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BASELINE = Path(__file__).with_name("schemathesis-baseline.json")
REPO = Path(__file__).resolve().parents[2]


def _st() -> str:
    return shutil.which("st") or str(Path(sys.executable).with_name("st"))


def test_schemathesis_with_all_checks_finds_nothing_new(tmp_path):
    baseline = tmp_path / "baseline.json"
    shutil.copy(BASELINE, baseline)  # the tracked file is never written
    with api_process(tmp_path / "data", tmp_path / "logs", CONVLENS_JOB_WORKERS="1") as url:
        run = subprocess.run(
            [
                _st(), "run", f"{url}/openapi.json",
                "--checks", "all",
                "--seed", "1",
                "--max-examples", "5",
                "--workers", "1",
                "--request-timeout", "60",
                "--max-response-time", "30",
                "--baseline", str(baseline),
            ],
            cwd=tmp_path, capture_output=True, text=True, timeout=600,
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.api.schemathesis_hooks", "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    assert "Runtime Error" not in run.stdout, report
