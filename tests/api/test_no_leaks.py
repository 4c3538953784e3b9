"""No server paths, user names or stack traces in any response (issue 12)."""

from __future__ import annotations

import getpass
import json
import os
import re
import sys

import pytest

from server.config import REPO_ROOT
from server.errors import NotFoundError
from server.jobs import JobState, MemoryJobStore, run_job
from server.redact import redact

ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?!api/)[\w.@+-]+/")


def leaks(text: str, settings) -> list[str]:
    found = ABSOLUTE_PATH.findall(text)
    secrets = {str(REPO_ROOT), str(settings.data_dir), str(settings.models_dir), os.path.expanduser("~")}
    found += [s for s in secrets if s in text]
    found += [w for w in ("Traceback", 'File "', "site-packages", sys.prefix) if w in text]
    user = getpass.getuser()
    if len(user) > 4:  # a name like 'root' also occurs in ordinary words; its home directory is checked
        found += [user] if user in text else []
    return found


def test_the_model_list_and_every_card_show_no_server_paths(client, settings):
    r = client.get("/api/v1/models")
    assert r.status_code == 200 and leaks(r.text, settings) == []
    models = r.json()
    assert any("CONVLENS_MODELS_DIR" in m["weights_message"] or "..." in m["weights_message"] for m in models)
    for m in models:
        card = client.get(f"/api/v1/models/{m['id']}")
        assert card.status_code == 200 and leaks(card.text, settings) == [], m["id"]


def test_error_bodies_name_the_setting_not_the_path_and_carry_no_stack_trace(client, settings):
    app = client.app

    def missing():
        raise NotFoundError(f"Checkpoint file '{settings.models_dir}/digits_cnn/gone.pt' does not exist.")

    def crash():
        raise RuntimeError(f"cannot open {os.path.expanduser('~')}/.cache/torch/hub/secret.pth")

    app.add_api_route("/test-only/missing", missing)
    app.add_api_route("/test-only/crash", crash)
    r = client.get("/test-only/missing")
    assert r.status_code == 404 and leaks(r.text, settings) == []
    assert "CONVLENS_MODELS_DIR/digits_cnn/gone.pt" in r.json()["detail"]
    from fastapi.testclient import TestClient

    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/test-only/crash")
    assert r.status_code == 500 and leaks(r.text, settings) == []
    assert r.json() == {
        "detail": "Internal error (RuntimeError); the server log has the details.",
        "error": "InternalError",
    }


def test_a_failed_job_reports_no_path_and_no_stack_trace(services, settings):
    def broken(_ctx, _params):
        raise OSError(f"cannot read {sys.prefix}/lib/python3.11/site-packages/x/weights.bin")

    store = MemoryJobStore()
    store.create(JobState(id="j1", kind="broken", params={}))
    run_job(store, "j1", "broken", {}, tasks={"broken": broken}, services=services)
    job = store.get("j1")
    assert job is not None and job.status == "failed"
    text = json.dumps(job.to_dict())
    assert leaks(text, settings) == [] and ".../weights.bin" in (job.error or "")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("see /api/v1/artifacts/abc/x.png", "see /api/v1/artifacts/abc/x.png"),
        ("http://127.0.0.1:8000/api/v1/models", "http://127.0.0.1:8000/api/v1/models"),
        ("a ratio of 1/2 and a/b", "a ratio of 1/2 and a/b"),
        ("'/root/.cache/torch/hub/checkpoints/vgg16-397923af.pth'", "'.../vgg16-397923af.pth'"),
    ],
)
def test_redact_keeps_urls_and_prose(message, expected):
    assert redact(message) == expected
