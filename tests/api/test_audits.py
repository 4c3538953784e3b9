"""POST /api/v1/audits and /api/v1/checkpoints/compare: jobs with results, reports and clear 4xx errors."""

from __future__ import annotations

import io
from collections.abc import Iterator

import numpy as np
import pytest

from server.config import REPO_ROOT, Settings
from tests.audit_models import CLEAN_ID, PLAN, PLANTED_ID
from tests.conftest import encode, wait_for

CLEAN, PLANTED = CLEAN_ID, PLANTED_ID

pytestmark = pytest.mark.usefixtures("planted_audit_models")


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator:
    """One app (and one stored copy of the digits) for the module: building the dataset takes seconds."""
    from fastapi.testclient import TestClient

    from server.api.app import create_app

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("audit-data"),
        models_dir=REPO_ROOT / "models",
        preload_default_model=False,
    )
    with TestClient(create_app(settings)) as client:
        client.settings = settings
        yield client


def finished(api, job_id: str, timeout: float = 300.0) -> dict:
    def poll():
        state = api.get(f"/api/v1/jobs/{job_id}").json()
        return state if state["status"] in ("succeeded", "failed", "cancelled") else None

    state = wait_for(poll, timeout=timeout)
    assert state["status"] == "succeeded", state
    return state["result"]


@pytest.fixture(scope="module")
def planted_report(api) -> dict:
    r = api.post(
        "/api/v1/audits",
        json={
            "model": PLANTED,
            "dataset": "digits",
            "what_if": True,
            "what_if_kinds": ["dead"],
            "fail_on": "dead>1%",
        },
    )
    assert r.status_code == 202, r.text
    assert r.json()["untrained"] is False
    return finished(api, r.json()["job_id"])


def test_audit_job_finds_the_planted_defects(planted_report):
    got = {(f["layer"], f["filter"], f["kind"]) for f in planted_report["flags"]}
    assert got == PLAN.expected_filters()
    assert planted_report["positive_layers"] == [PLAN.positive_layer]
    assert planted_report["untrained"] is False and planted_report["model"] == PLANTED
    assert planted_report["images"] == 1797 and planted_report["labelled"] is True
    assert all(len(f["top_images"]) == 4 for f in planted_report["flags"])


def test_audit_job_reports_what_if_and_gates(planted_report):
    what_if = planted_report["what_if"]
    assert what_if["zeroed"] == {layer: list(fs) for layer, fs in PLAN.dead.items()}
    assert what_if["change_points"] == 0.0
    (gate,) = planted_report["gates"]
    assert gate["gate"] == "dead>1%" and gate["failed"] is True and gate["value"] == pytest.approx(1.2)


def test_reports_and_correlation_matrices_are_served(api, planted_report):
    html = api.get(planted_report["artifacts"]["html"])
    assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
    assert "Neuron audit" in html.text and PLAN.positive_layer in html.text
    js = api.get(planted_report["artifacts"]["json"]).json()
    assert js["summary"] == planted_report["summary"]
    url = planted_report["artifacts"]["correlation"]["features.5"]
    corr = np.load(io.BytesIO(api.get(url).content))
    assert corr.shape == (64, 64)
    for src, dst in PLAN.copies["features.5"]:
        assert corr[src, dst] == pytest.approx(1.0, abs=1e-3)


def test_clean_model_passes_its_gate(api):
    r = api.post(
        "/api/v1/audits", json={"model": CLEAN, "dataset": "digits", "fail_on": "dead>5%, redundant>0"}
    )
    report = finished(api, r.json()["job_id"])
    assert report["flags"] == [] and report["positive_layers"] == []
    assert [g["failed"] for g in report["gates"]] == [False, False]
    assert report["summary"]["clean"] is True


@pytest.mark.parametrize(
    ("thresholds", "needle"),
    [
        ({"dead_share": 1.5}, "dead_share"),
        ({"weight_cosine": -0.1}, "weight_cosine"),
        ({"deadness": 0.1}, "Unknown"),
    ],
)
def test_thresholds_outside_zero_one_get_422(api, thresholds, needle):
    r = api.post("/api/v1/audits", json={"model": CLEAN, "dataset": "digits", "thresholds": thresholds})
    assert r.status_code == 422
    assert needle in r.json()["detail"]


def test_bad_gate_unknown_model_and_dataset(api):
    r = api.post("/api/v1/audits", json={"model": CLEAN, "dataset": "digits", "fail_on": "dead>>5"})
    assert r.status_code == 422 and "gate" in r.json()["detail"]
    r = api.post("/api/v1/audits", json={"model": "digits_cnm", "dataset": "digits"})
    assert r.status_code == 404 and "digits_cnn" in r.json()["detail"]
    r = api.post("/api/v1/audits", json={"model": CLEAN, "dataset": "no-such-data"})
    assert r.status_code == 404


def test_what_if_on_an_unlabelled_dataset_gets_422(api):
    from server.datasets.store import DatasetStore

    store = DatasetStore.from_settings(api.settings)
    rng = np.random.default_rng(0)
    files = [(f"{i}.png", encode((rng.random((8, 8)) * 255).astype(np.uint8))) for i in range(6)]
    info = store.create_from_files("no labels", files)
    r = api.post("/api/v1/audits", json={"model": CLEAN, "dataset": info.id, "what_if": True})
    assert r.status_code == 422
    assert "labelled" in r.json()["detail"]
    # without the what-if, the same data is fine: no separability curve, everything else
    r = api.post("/api/v1/audits", json={"model": CLEAN, "dataset": info.id})
    report = finished(api, r.json()["job_id"])
    assert report["labelled"] is False and report["separability"] == []


def test_default_thresholds_are_listed(api):
    t = api.get("/api/v1/audits/thresholds").json()
    assert t["dead_share"] == 0.001 and all(0 <= v <= 1 for v in t.values())


# --- checkpoints ----------------------------------------------------------------------------------------


def test_digits_snapshots_are_listed_and_updates_shrink(api):
    names = api.get("/api/v1/checkpoints/digits_cnn").json()["checkpoints"]
    assert {"epoch_01", "epoch_03", "epoch_10", "epoch_30"} <= set(names)
    r = api.post(
        "/api/v1/checkpoints/compare",
        json={"model": "digits_cnn", "checkpoints": ["epoch_01", "epoch_03", "epoch_10", "epoch_30"]},
    )
    assert r.status_code == 202, r.text
    result = finished(api, r.json()["job_id"])
    rates = [c["relative_update_per_epoch"] for c in result["comparisons"]]
    assert len(rates) == 3 and rates[0] > rates[1] > rates[2] > 0
    assert result["untrained"] is False
    layer = result["comparisons"][0]["layers"][0]
    assert len(layer["filter_change"]) == 16 and layer["layer"] == "features.0"


def test_checkpoints_of_different_architectures_get_422(api):
    r = api.post(
        "/api/v1/checkpoints/compare",
        json={
            "checkpoints": [
                {"model": "digits_cnn", "checkpoint": "epoch_01"},
                {"model": "alexnet", "untrained": True},
            ]
        },
    )
    assert r.status_code == 422
    assert "different architectures" in r.json()["detail"]


def test_unknown_checkpoint_and_too_few(api):
    r = api.post(
        "/api/v1/checkpoints/compare", json={"model": "digits_cnn", "checkpoints": ["epoch_01", "epoch_99"]}
    )
    assert r.status_code == 404 and "epoch_" in r.json()["detail"]
    r = api.post("/api/v1/checkpoints/compare", json={"model": "digits_cnn", "checkpoints": ["epoch_01"]})
    assert r.status_code == 422
    r = api.post(
        "/api/v1/checkpoints/compare", json={"model": "digits_cnn", "checkpoints": ["../final", "epoch_01"]}
    )
    assert r.status_code == 404
