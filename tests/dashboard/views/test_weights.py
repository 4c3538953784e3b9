"""The model card's weight pull against the real API (in-process) and a local mirror (tests/weights_mirror.py):
the button only where the API allows downloads, the job's bytes per file while it runs, and the card with its
weights present once it has finished."""

from __future__ import annotations

import time
from contextlib import ExitStack

import pytest
from dash import no_update

from dashboard import api_client
from dashboard.components.model_card import model_card, weights_pull_progress
from dashboard.views import explore
from dashboard.views import weights as view
from tests.dashboard.trees import find, texts
from tests.weights_mirror import mirrored_api

MODEL = "squeezenet1_1"


def _button(tree) -> list:
    return list(find(tree, lambda c: getattr(c, "id", None) == "weights-pull-button"))


@pytest.fixture
def wired(weights_mirror, tmp_path):
    """``wired(allow)``: the dashboard's client on an API with CONVLENS_ALLOW_WEIGHT_DOWNLOADS set so."""
    with ExitStack() as stack:

        def wire(allow: bool) -> api_client.ApiClient:
            http = stack.enter_context(mirrored_api(tmp_path, allow_downloads=allow))
            client = api_client.ApiClient("http://testserver", http=http)
            api_client.set_client(client)
            return client

        try:
            yield wire
        finally:
            api_client.set_client(None)


@pytest.fixture
def allowed(wired):
    return wired(True)


@pytest.fixture
def off(wired):
    return wired(False)


def test_the_button_shows_only_when_the_api_allows_downloads(allowed):
    assert _button(model_card(allowed.model_card(MODEL)))
    assert not _button(model_card(allowed.model_card(MODEL, untrained=True)))
    assert not _button(model_card(allowed.model_card("digits_cnn")))  # no official weights to pull


def test_no_button_and_a_readable_refusal_when_downloads_are_off(off, weights_mirror):
    assert not _button(model_card(off.model_card(MODEL)))
    store, status, disabled = view.start_pull(1, MODEL)  # a stale page's click
    assert store is None and disabled is True
    assert "CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true" in texts(status) and weights_mirror.requests == []


def test_progress_renders_bytes_of_the_total_per_file():
    job = {
        "status": "running",
        "message": "resnet18-f37072fd.pth: 12,000,000 of 46,800,000 bytes",
        "frame": {"files": [{"name": "resnet18-f37072fd.pth", "received": 12_000_000, "total": 46_800_000}]},
    }
    tree = weights_pull_progress(job)
    assert "resnet18-f37072fd.pth: 12.0 MB of 46.8 MB" in texts(tree)
    (bar,) = find(tree, lambda c: type(c).__name__ == "Progress")
    assert (bar.value, bar.max) == ("12000000", "46800000")


def test_a_pull_runs_with_progress_and_the_card_then_shows_the_weights(allowed, weights_mirror):
    _state, sha256 = weights_mirror.publish(MODEL)

    store, status, disabled = view.start_pull(1, MODEL)
    assert disabled is False and store["model"] == MODEL and "Downloading" in texts(status)
    assert view.start_pull(0, MODEL) == (no_update, no_update, no_update)  # the button drawn again

    deadline, running = time.monotonic() + 120, []
    while True:
        status, disabled, pulled = view.poll_pull(store)
        if disabled:
            break
        assert pulled is no_update
        running.append(texts(status))
        assert time.monotonic() < deadline
        time.sleep(0.01)

    file_name = f"{MODEL}-{sha256[:8]}.pth"
    assert all(t.startswith("Download") or (file_name in t and "MB of 5.0 MB" in t) for t in running), running

    assert pulled == {"model": MODEL, "job_id": store["job_id"]}
    assert f"stored as {MODEL}-{sha256[:8]}.safetensors" in texts(status)
    card, layers_data, _layer = explore.show_model(MODEL, False, None)  # what `weights-pulled` triggers
    assert "trained" in texts(card) and "weights unavailable" not in texts(card)
    assert not _button(card) and layers_data["layers"]
    assert view.poll_pull(None) == (no_update, True, no_update)
