"""Bring your own model, end to end (issue 18): `convlens models add` registers the lab's class with its
checkpoint, a real API serves it and the explore page in real headless Chromium shows it."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest
import torch

from server.config import REPO_ROOT
from tests.e2e.browser import VIEWPORT, ConsoleLog, save_screenshot
from tests.processes import api_process, free_port, server_process
from tests.zoo.conftest import MYNET

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab_servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("byom")
    models = tmp / "models"
    (models / "code").mkdir(parents=True)
    (models / "code" / "mynet.py").write_text(MYNET)
    # the bundled models trained by `make models` (listing models must not train them again here)
    for bundled in ("digits_cnn", "dcgan_digits", "seq_rnn", "seq_lstm", "seq_gru"):
        (models / bundled).symlink_to((REPO_ROOT / "models" / bundled).resolve())
    sys.path.insert(0, str(models / "code"))
    try:
        import mynet  # the lab's own training script would do this
    finally:
        sys.path.remove(str(models / "code"))
    torch.manual_seed(0)
    net = mynet.MyNet(num_classes=3)
    torch.save(
        {"state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}, "epoch": 5}, tmp / "mynet.ckpt"
    )
    (tmp / "labels.txt").write_text("cat\ndog\nfox\n")
    env = {**os.environ, "CONVLENS_MODELS_DIR": str(models)}
    added = subprocess.run(
        [
            sys.executable,
            "-m",
            "server.cli",
            "models",
            "add",
            "--module",
            "mynet:MyNet",
            "--weights",
            str(tmp / "mynet.ckpt"),
            "--input-size",
            "3,32,32",
            "--labels",
            str(tmp / "labels.txt"),
            "--kwargs",
            '{"num_classes": 3}',
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert added.returncode == 0, added.stderr
    with api_process(tmp / "data", tmp / "logs", CONVLENS_MODELS_DIR=str(models)) as api:
        port = free_port()
        dash_env = {
            "CONVLENS_API_URL": api,
            "CONVLENS_DASHBOARD_HOST": "127.0.0.1",
            "CONVLENS_DASHBOARD_PORT": str(port),
            "CONVLENS_DATA_DIR": str(tmp / "data"),
        }
        url = f"http://127.0.0.1:{port}"
        with server_process("dashboard", dash_env, f"{url}/", tmp / "logs" / "dashboard.log", timeout=90):
            yield api, url


def test_an_added_model_is_served_and_opens_in_explore(lab_servers, browser):
    api, dashboard = lab_servers
    card = httpx.get(f"{api}/api/v1/models/mynet", timeout=60).json()
    assert card["origin"] == {
        "class": "mynet:MyNet",
        "checkpoint": "mynet.ckpt",
        "format": "training checkpoint (torch.load, weights only)",
        "group": "lab",
    }
    assert card["pretrained"] and card["labels"] == ["cat", "dog", "fox"]
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    console = ConsoleLog()
    console.attach(page)
    try:
        page.goto(f"{dashboard}/?model=mynet&image=sample:chelsea")
        page.wait_for_selector("#model-weights-badge")
        body = page.inner_text("#model-card-body")
        assert "mynet:MyNet" in body and "mynet.ckpt" in body and "lab model" in body
        page.wait_for_selector(".cl-layer-browser")
        assert page.wait_for_selector("#top1-label").inner_text() in {"cat", "dog", "fox"}
        page.click("summary:has-text('features')")
        page.click("[data-layer='features.0']")
        page.wait_for_selector("#filter-grid-tiles[data-layer='features.0']")
        assert page.locator("#filter-grid-tiles .cl-tile").count() == 8  # MyNet's first conv has 8 filters
        save_screenshot(page, "explore-lab-model-card")
        page.click("#model-picker")
        page.wait_for_selector("text=Lab models")
        save_screenshot(page, "explore-lab-model")
        page.keyboard.press("Escape")
        assert console.errors == [], console.errors
    finally:
        context.close()
