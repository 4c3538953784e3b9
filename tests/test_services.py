"""The composition root: Services.from_settings builds each service once and wires them to each other;
the API gets its services from it; no module keeps a service in a global; a job runs with the
services of its data directory."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from fastapi.testclient import TestClient

import server.services as root
from server.api.app import create_app
from server.config import REPO_ROOT, Settings
from server.jobs import JobManager, ThreadRunner
from server.services import Services
from server.tasks import TASKS
from tests.conftest import wait_for
from tests.datasets.test_store import png

SERVICE_FIELDS = [f.name for f in dataclasses.fields(Services) if not f.name.startswith("_")]
SERVICE_TYPES = (
    Services,
    root.ZooManager,
    root.ArtifactStore,
    root.DatasetStore,
    root.FeatureCache,
    root.ExploreService,
    root.AttributionService,
    root.ProjectionService,
    root.AuditService,
    root.CheckpointService,
    root.DeepVisService,
    root.TopImagesService,
    JobManager,
)


def settings_in(path: Path, **kw) -> Settings:
    return Settings(data_dir=path, models_dir=REPO_ROOT / "models", preload_default_model=False, **kw)


def test_each_service_is_built_once_and_its_dependencies_are_the_shared_instances(tmp_path, monkeypatch):
    built: dict[str, int] = {}
    for name in ("ZooManager", "ArtifactStore", "DatasetStore", "FeatureCache", "ExploreService"):
        cls = getattr(root, name)
        counting = type(name, (cls,), {"__init__": _counting_init(cls, name, built)})
        monkeypatch.setattr(root, name, counting)
    s = Services.from_settings(settings_in(tmp_path / "data"))
    assert built == {
        "ZooManager": 1,
        "ArtifactStore": 1,
        "DatasetStore": 1,
        "FeatureCache": 1,
        "ExploreService": 1,
    }

    parts = [getattr(s, name) for name in SERVICE_FIELDS]
    assert len({id(p) for p in parts}) == len(parts)  # one object per service
    for svc in (s.explore, s.attributions, s.audits, s.deepvis, s.top_images):
        assert svc.artifacts is s.artifacts
    for svc in (s.features, s.projections, s.audits, s.top_images):
        assert svc.datasets is s.datasets
    for svc in (s.projections, s.audits, s.checkpoints, s.deepvis, s.top_images):
        assert svc.zoo is s.zoo
    assert s.projections.features is s.features
    assert s.compare.explore is s.explore and s.compare.checkpoints is s.checkpoints
    assert s.compare.features is s.features and s.compare.datasets is s.datasets
    assert s.explore.settings is s.settings and s.attributions.settings is s.settings
    assert (
        s.datasets.root == s.settings.datasets_dir and s.artifacts.root == s.settings.cache_dir / "artifacts"
    )
    assert s.checkpoints.models_dir == REPO_ROOT / "models"
    # the in-process runner runs the tasks with these very services
    assert isinstance(s.jobs.runner, ThreadRunner) and s.jobs.runner.services is s
    assert s.jobs.tasks is TASKS and s.jobs.runner.tasks is TASKS
    assert s.jobs.data_dir == tmp_path / "data"


def _counting_init(cls, name, built):
    def __init__(self, *args, **kwargs):
        built[name] = built.get(name, 0) + 1
        cls.__init__(self, *args, **kwargs)

    return __init__


def test_two_sets_of_services_share_nothing(tmp_path):
    a = Services.from_settings(settings_in(tmp_path / "a"))
    b = Services.from_settings(settings_in(tmp_path / "b"))
    for name in SERVICE_FIELDS:
        assert getattr(a, name) is not getattr(b, name), name
    a.datasets.create_from_files("only-in-a", [("x.png", png(10))])
    assert a.datasets.exists("only-in-a") and not b.datasets.exists("only-in-a")


def test_a_job_runs_with_the_services_of_its_data_directory(tmp_path):
    s = Services.from_settings(settings_in(tmp_path / "mine"))
    assert s.for_job({}) is s
    assert s.for_job({"data_dir": str(tmp_path / "mine")}) is s
    other = s.for_job({"data_dir": str(tmp_path / "theirs")})
    assert other.settings.data_dir == tmp_path / "theirs"
    assert other.datasets.root == tmp_path / "theirs" / "datasets"
    assert other.artifacts.root == tmp_path / "theirs" / "cache" / "artifacts"
    assert other.zoo is s.zoo and other.jobs is s.jobs  # models are loaded once per process
    assert s.for_job({"data_dir": str(tmp_path / "theirs")}) is other  # built once
    assert other.settings.models_dir == s.settings.models_dir  # every other setting is the process's


def test_the_api_uses_the_services_it_is_given(tmp_path, zoo):
    s = Services.from_settings(settings_in(tmp_path / "data"), zoo=zoo)
    with TestClient(create_app(services=s)) as client:
        assert client.app.state.services is s
        files = [("images", (f"{i}.png", png(i * 30, size=8), "image/png")) for i in range(6)]
        r = client.post("/api/v1/datasets", data={"name": "given", "labels": ["a", "b"] * 3}, files=files)
        assert r.status_code == 201, r.text
        assert s.datasets.get("given").num_images == 6
        body = {"model": "digits_cnn", "layer": "features.5", "dataset": "given", "method": "pca"}
        job_id = client.post("/api/v1/projections", json=body).json()["job_id"]
        assert s.jobs.get(job_id).kind == "projection"
        done = wait_for(lambda: (j := s.jobs.get(job_id)).done and j, timeout=60)
        assert done.status == "succeeded", done.error
        assert s.projections.result_path("given", done.params["result_key"]).is_file()


def test_an_app_built_from_settings_gets_services_built_from_them(tmp_path):
    settings = settings_in(tmp_path / "data")
    app = create_app(settings)
    assert isinstance(app.state.services, Services) and app.state.services.settings is settings


def finished(client: TestClient, job_id: str) -> dict:
    return wait_for(
        lambda: (j := client.get(f"/api/v1/jobs/{job_id}").json())["status"] in ("succeeded", "failed") and j,
        timeout=60,
    )


def test_apps_with_different_data_dirs_share_no_service_and_no_module_keeps_one(tmp_path):
    """Two apps run jobs and requests; afterwards no module of server/ holds a service in a global."""
    apps = [create_app(settings_in(tmp_path / name)) for name in ("a", "b")]
    with TestClient(apps[0]) as a, TestClient(apps[1]) as b:
        sa, sb = a.app.state.services, b.app.state.services
        assert sa.zoo is not sb.zoo and sa.jobs is not sb.jobs
        for client, name in ((a, "in-a"), (b, "in-b")):
            files = [("images", (f"{i}.png", png(i * 30, size=8), "image/png")) for i in range(6)]
            r = client.post("/api/v1/datasets", data={"name": name, "labels": ["a", "b"] * 3}, files=files)
            assert r.status_code == 201, r.text
            body = {"model": "digits_cnn", "layer": "features.5", "dataset": name, "method": "pca"}
            job = finished(client, client.post("/api/v1/projections", json=body).json()["job_id"])
            assert job["status"] == "succeeded", job
            image = {"image": ("x.png", png(100, size=8), "image/png")}
            r = client.post(
                "/api/v1/models/digits_cnn/attributions", files=image, data={"layer": "features.3"}
            )
            assert r.status_code == 200, r.text
        assert {d["id"] for d in a.get("/api/v1/datasets").json()} & {"in-a", "in-b"} == {"in-a"}
        assert {d["id"] for d in b.get("/api/v1/datasets").json()} & {"in-a", "in-b"} == {"in-b"}
        assert sa.zoo.loaded_ids() == sb.zoo.loaded_ids() == [("digits_cnn", False)]  # each loaded its own
        holders = [
            f"{mod_name}.{attr}"
            for mod_name, module in list(sys.modules.items())
            if mod_name.startswith("server.") and mod_name != "server.worker"  # a worker's root, by design
            for attr, value in vars(module).items()
            if _holds_service(value)
        ]
        assert holders == []


def _holds_service(value) -> bool:
    """A service, or a container holding one (what a lazy module-level cache of services would be)."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(isinstance(v, SERVICE_TYPES) for v in value)
    return isinstance(value, SERVICE_TYPES)
