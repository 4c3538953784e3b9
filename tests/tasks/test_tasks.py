"""The task table: one adapter per job kind the API starts, each handing ``ctx.services`` the job's
params and reporting progress through the job (run here through run_job with real services)."""

from __future__ import annotations

import pytest

from server.jobs import JobState, MemoryJobStore, run_job
from server.tasks import TASKS


def test_the_table_names_every_job_kind_and_cannot_be_changed_by_importing_a_module():
    assert set(TASKS) == {
        "audit",
        "checkpoint_compare",
        "compare_cka",
        "deepvis",
        "top_images",
        "projection",
        "features",
        "weight_pull",
    }
    with pytest.raises(TypeError):
        TASKS["extra"] = lambda ctx, params: None  # type: ignore[index]


def run(services, kind: str, params: dict) -> tuple[JobState, list[tuple[float, str]]]:
    """Run one job of ``kind`` in this thread, recording every progress report."""
    store = MemoryJobStore()
    reports: list[tuple[float, str]] = []
    update = store.update

    def recording_update(job_id, **fields):
        if "progress" in fields and "message" in fields:
            reports.append((fields["progress"], fields["message"]))
        update(job_id, **fields)

    store.update = recording_update  # type: ignore[method-assign]
    store.create(JobState(id="j", kind=kind, params=params))
    run_job(store, "j", kind, params, tasks=TASKS, services=services)
    return store.get("j"), reports


def test_the_checkpoint_task_calls_its_service_and_reports_progress(services):
    state, reports = run(
        services, "checkpoint_compare", {"model": "digits_cnn", "checkpoints": ["epoch_01", "epoch_03"]}
    )
    assert state.status == "succeeded", state.error
    assert state.result == services.checkpoints.compare(
        {"model": "digits_cnn", "checkpoints": ["epoch_01", "epoch_03"]}
    )
    assert [m for _p, m in reports] == [
        "loading digits_cnn:epoch_01",
        "loading digits_cnn:epoch_03",
        "comparing",
    ]


def test_the_cka_task_calls_its_service_and_reports_progress(services):
    params = {
        "a": {"model": "digits_cnn", "checkpoint": "epoch_10"},
        "b": {"model": "digits_cnn", "checkpoint": "epoch_30"},
        "dataset": "digits",
        "max_images": 32,
    }
    state, reports = run(services, "compare_cka", params)
    assert state.status == "succeeded", state.error
    assert state.result == services.compare.cka(params)
    assert reports[-1][1] == "comparing layers"
    assert any(m.startswith("digits_cnn: extracting 5 layers") for _p, m in reports)


def test_a_task_runs_with_the_services_of_the_jobs_data_dir(services, tmp_path):
    """A job queued by an API with another data directory finds that directory's datasets."""
    from server.config import REPO_ROOT, Settings
    from server.services import Services
    from tests.datasets.test_store import png

    theirs = Services.from_settings(
        Settings(data_dir=tmp_path / "theirs", models_dir=REPO_ROOT / "models"), zoo=services.zoo
    )
    theirs.datasets.create_from_files("only-theirs", [(f"{i}.png", png(i * 20, size=8)) for i in range(6)])
    params = {
        "model": "digits_cnn",
        "layer": "features.3",
        "dataset": "only-theirs",
        "data_dir": str(tmp_path / "theirs"),
    }
    state, reports = run(services, "features", params)
    assert state.status == "succeeded", state.error
    assert state.result["n"] == 6 and reports[-1] == (1.0, "features ready")
    assert not services.datasets.exists("only-theirs")
    state, _ = run(services, "features", {**params, "data_dir": str(services.settings.data_dir)})
    assert state.status == "failed" and state.error_status == 404  # not in this API's data
