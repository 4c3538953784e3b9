"""The model card's weight pull, end to end (issue 17): a real API with CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true and
a local mirror (tests/weights_mirror.py), a real dashboard, headless Chromium: the button pulls the weights and
the card then shows them present, with the layers of the pretrained model."""

from __future__ import annotations

import json

import httpx
import pytest

from server.config import REPO_ROOT
from tests.e2e.browser import VIEWPORT, ConsoleLog, save_screenshot
from tests.processes import free_port, server_process
from tests.weights_mirror import Mirror, serving

pytestmark = pytest.mark.e2e

MODEL = "squeezenet1_1"


@pytest.fixture(scope="module")
def pull_servers(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("pull")
    models = tmp / "models"
    models.mkdir()
    for bundled in ("digits_cnn", "dcgan_digits", "seq_rnn", "seq_lstm", "seq_gru"):
        (models / bundled).symlink_to((REPO_ROOT / "models" / bundled).resolve())
    (tmp / "mirror" / "lab").mkdir(parents=True)
    with serving(tmp / "mirror") as mirror_server:
        mirror = Mirror(f"{mirror_server.url}/lab", tmp / "mirror" / "lab", models, mirror_server)
        _state, sha256 = mirror.publish(MODEL)
        api_port = free_port()
        api = f"http://127.0.0.1:{api_port}"
        api_env = {
            "CONVLENS_API_HOST": "127.0.0.1",
            "CONVLENS_API_PORT": str(api_port),
            "CONVLENS_DATA_DIR": str(tmp / "data"),
            "CONVLENS_MODELS_DIR": str(models),
            "CONVLENS_ALLOW_WEIGHT_DOWNLOADS": "true",
            "CONVLENS_WEIGHTS_MIRROR": mirror.base_url,
            "CONVLENS_TEST_OFFICIAL_URLS": json.dumps(mirror.official),
            "TORCH_HOME": str(tmp / "torch"),  # no hub cache of this machine's
        }
        with server_process("tests.e2e.mirrored_api", api_env, f"{api}/readyz", tmp / "logs" / "api.log"):
            port = free_port()
            dash_env = {
                "CONVLENS_API_URL": api,
                "CONVLENS_DASHBOARD_HOST": "127.0.0.1",
                "CONVLENS_DASHBOARD_PORT": str(port),
                "CONVLENS_DATA_DIR": str(tmp / "data"),
                "CONVLENS_DASHBOARD_DEBUG": "false",
            }
            url = f"http://127.0.0.1:{port}"
            with server_process("dashboard", dash_env, f"{url}/", tmp / "logs" / "dashboard.log", timeout=90):
                yield api, url, sha256, mirror


def test_the_card_button_pulls_the_weights_and_the_card_then_shows_them(pull_servers, browser):
    api, dashboard, sha256, mirror = pull_servers
    assert httpx.get(f"{api}/api/v1/models/{MODEL}", timeout=60).json()["weights_pull"] is True
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    console = ConsoleLog()
    console.attach(page)
    try:
        page.goto(f"{dashboard}/?model={MODEL}&image=sample:chelsea")
        page.wait_for_selector("#weights-pull-button")
        page.wait_for_selector("#predictions-error:has-text('Could not download the weights')")
        page.click("#weights-pull-button")
        page.wait_for_selector(f"#weights-pull-status:has-text('stored as {MODEL}-{sha256[:8]}.safetensors')")
        page.wait_for_selector(f"#model-card-body:has-text('{MODEL}-{sha256[:8]}.safetensors')")
        assert page.locator("#weights-pull-button").count() == 0
        assert page.inner_text("#model-weights-badge").startswith("trained")
        page.wait_for_selector(".cl-layer-browser")  # the pretrained model's layers
        page.wait_for_selector("#top1-label")  # predictions made with the pulled weights
        save_screenshot(page, "explore-weights-pulled")
        assert len(mirror.requests) == 1
        card = httpx.get(f"{api}/api/v1/models/{MODEL}", timeout=60).json()
        assert card["pretrained"] is True and card["weights_pull"] is False
        assert console.errors == [], console.errors
    finally:
        context.close()
