"""Shared fixtures. Models are loaded once per session; data directories are per test."""

from __future__ import annotations

import io
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

# Compiled inference (CONVLENS_COMPILE=auto, the product's default) is tested where it is the subject:
# tests/engine/test_compiled.py, tests/test_explore_compiled.py and the restart test in tests/e2e. Elsewhere
# the in-process services and the servers the tests start serve eager, so that background compiles of
# every model a test loads do not compete with the tests for this machine's 2 cores.
os.environ.setdefault("CONVLENS_COMPILE", "off")
from PIL import Image

from server.config import REPO_ROOT, Settings


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("convlens")
    group.addoption(
        "--deploy",
        action="store_true",
        help="run the real deployment tests (marker `deploy`: images built, compose stack up); make test-deploy",
    )
    group.addoption(
        "--deploy-gpu",
        action="store_true",
        help="with --deploy: bring the stack up with docker-compose.gpu.yml and check the API is on CUDA",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--deploy"):
        # `make test` stays fast: the real deployment (minutes, containers) runs in `make test-deploy`.
        deselected = [item for item in items if item.get_closest_marker("deploy")]
        if deselected:
            config.hook.pytest_deselected(items=deselected)
            items[:] = [item for item in items if not item.get_closest_marker("deploy")]
    if not torch.cuda.is_available():
        skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip_gpu)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def zoo():
    """One zoo for the session (each model loaded once), shared by the tests' apps through their Services."""
    from server.zoo.builtin import ensure_registered
    from server.zoo.manager import ZooManager

    ensure_registered()
    return ZooManager("auto")


@pytest.fixture(scope="session")
def lite0(zoo):
    return zoo.load("efficientnet_lite0")


@pytest.fixture(scope="session")
def lite0_renders(lite0):
    """DeepVis renders on Lite0 at 224 px, 256 steps, seed 0, each (preset, target) computed once per session
    and shared by the quality gates and the verdict tests: ``lite0_renders(preset, target)`` with a target as
    the API takes it (``{"class_index": 1}``, ``{"layer": "blocks.5", "channel": 7}``, ...)."""
    from server.deepvis import objective_for
    from server.engine.optvis import preset_config, render

    done: dict[tuple[str, str], object] = {}

    def get(preset: str, target: dict):
        key = (preset, repr(sorted(target.items())))
        if key not in done:
            card = lite0.card
            cfg = preset_config(preset, tuple(card.input_size[1:]), steps=256, seed=0)
            with lite0.lock:
                done[key] = render(
                    lite0.model,
                    objective_for(target),
                    cfg,
                    input_size=card.input_size,
                    mean=card.mean,
                    std=card.std,
                    device=lite0.device,
                )
        return done[key]

    return get


@pytest.fixture(scope="session")
def digits_model(zoo):
    return zoo.load("digits_cnn")


@pytest.fixture(scope="module")
def planted_audit_models() -> Iterator[None]:
    """The audit's fixture models (a clean one and copies with planted defects) registered for a module."""
    from tests.audit_models import audit_models_registered

    with audit_models_registered():
        yield


@pytest.fixture
def weights_mirror(tmp_path: Path) -> Iterator:
    """A local HTTP server as CONVLENS_WEIGHTS_MIRROR and a temporary CONVLENS_MODELS_DIR, both through the
    environment as a user's shell sets them; ``mirror.publish(id)`` serves a state dict and makes its file
    name the official one (tests/weights_mirror.py)."""
    from server.config import get_settings
    from server.zoo import pull
    from tests.weights_mirror import Mirror, serving

    served = tmp_path / "mirror"
    (served / "lab").mkdir(parents=True)
    real_official_url = pull.official_url
    with serving(served) as server, pytest.MonkeyPatch.context() as mp:
        mirror = Mirror(f"{server.url}/lab", served / "lab", tmp_path / "models", server)
        mp.setenv("CONVLENS_MODELS_DIR", str(mirror.models_dir))
        mp.setenv("CONVLENS_WEIGHTS_MIRROR", mirror.base_url)
        mp.setattr(
            pull,
            "official_url",
            lambda model_id: mirror.official.get(model_id) or real_official_url(model_id),
        )
        get_settings.cache_clear()
        try:
            yield mirror
        finally:
            get_settings.cache_clear()
    get_settings.cache_clear()  # the environment is the test session's again


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings with a fresh data dir; models stay in the repository's models/ (digits_cnn trained once)."""
    return Settings(data_dir=tmp_path / "data", models_dir=REPO_ROOT / "models", preload_default_model=False)


@pytest.fixture
def services(settings: Settings, zoo):
    """This test's services over its own data directory, with the session's zoo."""
    from server.services import Services

    return Services.from_settings(settings, zoo=zoo)


@pytest.fixture
def client(services) -> Iterator:
    from fastapi.testclient import TestClient

    from server.api.app import create_app

    with TestClient(create_app(services=services)) as c:
        yield c


def encode(img: Image.Image | np.ndarray, fmt: str = "PNG", **kw) -> bytes:
    if isinstance(img, np.ndarray):
        img = Image.fromarray(img)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="session")
def chelsea_jpeg() -> bytes:
    import skimage.data

    return encode(skimage.data.chelsea(), "JPEG", quality=92)


@pytest.fixture(scope="session")
def coffee_jpeg() -> bytes:
    import skimage.data

    return encode(skimage.data.coffee(), "JPEG", quality=92)


def wait_for(predicate, timeout: float = 30.0, interval: float = 0.1):
    """Poll ``predicate`` until it returns a truthy value; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"condition not met within {timeout}s")
