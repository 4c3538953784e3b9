"""The DCGAN's halves as ordinary zoo models: the discriminator through Explore, attributions, DeepVis
and the audit like any CNN; the generator's layers, filters and audit for latent inputs."""

import io

import numpy as np
import pytest
import torch

from tests.conftest import encode, wait_for

D = "dcgan_digits_discriminator"
G = "dcgan_digits_generator"


@pytest.fixture(scope="module")
def digit_png() -> bytes:
    from sklearn.datasets import load_digits

    return encode((load_digits().images[3] / 16 * 255).astype(np.uint8))


def _npy(client, url):
    return np.load(io.BytesIO(client.get(url).content), allow_pickle=False)


def _finished(client, job_id: str, timeout: float = 300) -> dict:
    def done():
        state = client.get(f"/api/v1/jobs/{job_id}").json()
        return state if state["status"] in ("succeeded", "failed", "cancelled") else None

    state = wait_for(done, timeout=timeout)
    assert state["status"] == "succeeded", state
    return state["result"]


def test_discriminator_predicts_real_for_a_real_digit_and_explores(client, digit_png):
    r = client.post(f"/api/v1/models/{D}/predict", files={"image": ("d.png", digit_png)}, data={"top_k": "2"})
    assert r.status_code == 200, r.text
    preds = {p["label"]: p["probability"] for p in r.json()["predictions"]}
    assert set(preds) == {"fake", "real"} and preds["real"] + preds["fake"] == pytest.approx(1)
    r = client.post(
        f"/api/v1/models/{D}/activations", files={"image": ("d.png", digit_png)}, data={"layer": "features.2"}
    )
    assert r.status_code == 200, r.text
    assert r.json()["shape"] == [64, 2, 2] and len(r.json()["channels"]) == 64
    w = client.get(f"/api/v1/models/{D}/layers/features.0/weights").json()
    assert w["shape"] == [32, 1, 4, 4]


def test_discriminator_attributions_of_real(client, digit_png):
    for data in (
        {"method": "gradcam", "layer": "features.2"},
        {"method": "guided_backprop", "class_index": "1"},
    ):
        r = client.post(f"/api/v1/models/{D}/attributions", files={"image": ("d.png", digit_png)}, data=data)
        assert r.status_code == 200, r.text
        m = _npy(client, r.json()["npy_url"])
        assert m.shape[-2:] == (8, 8) and np.abs(m).sum() > 0


def test_discriminator_deepvis_of_real_raises_its_score(client, zoo):
    r = client.post(
        f"/api/v1/models/{D}/deepvis",
        json={"target": {"class_index": 1}, "preset": "deepvis", "steps": 24, "seed": 0},
    )
    assert r.status_code in (200, 202), r.text
    result = _finished(client, r.json()["job_id"])
    img = result.get("final_npy_url") or result.get("npy_url")
    assert result and img is not None, result.keys()


def test_generator_layers_for_a_latent_input(client):
    r = client.post(f"/api/v1/models/{G}/activations", data={"layer": "net.5", "latent_seed": "3"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["shape"] == [32, 4, 4] and body["latent_seed"] == 3
    acts = _npy(client, body["npy_url"])
    # the same latent through the model directly
    from server.engine.gan import seeded_latents
    from server.engine.hooks import capture

    lm = client.app.state.services.zoo.load(G)
    with capture(lm.model, ["net.5"]) as out, torch.inference_mode():
        lm.model(lm.to_input(seeded_latents(3, 1, 32)[:, :, None, None]))
    np.testing.assert_allclose(acts, out["net.5"][0].cpu().numpy(), atol=1e-5)
    assert body["silent_channels"] == [s["index"] for s in body["channels"] if s["max"] <= 0]
    w = client.get(f"/api/v1/models/{G}/layers/net.0/weights").json()
    assert w["type"] == "ConvTranspose2d" and w["shape"] == [32, 64, 2, 2]


def test_generator_without_a_latent_is_422(client, digit_png):
    r = client.post(
        f"/api/v1/models/{G}/activations", files={"image": ("d.png", digit_png)}, data={"layer": "net.5"}
    )
    assert r.status_code == 422 and "latent_seed" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "multipart", "body"),
    [
        ("predict", True, {}),
        ("attributions", True, {"layer": "net.3", "channel": "0", "method": "deconvnet"}),
        ("deepvis", False, {"target": {"layer": "net.3", "channel": 0}, "steps": 8}),
        ("top-images", False, {"layer": "net.3", "channel": 0, "dataset": "digits"}),
    ],
)
def test_image_endpoints_refuse_a_generator_with_a_422_that_says_what_to_do(
    client, digit_png, path, multipart, body
):
    """A generator's input is a latent: every endpoint that feeds an image says so before any work
    (a 500 from a transposed conv fed 3 channels, or a job that fails, is what this replaced)."""
    url = f"/api/v1/models/{G}/{path}"
    if multipart:
        r = client.post(url, files={"image": ("d.png", digit_png)}, data=body)
    else:
        r = client.post(url, json=body)
    assert r.status_code == 422, r.text
    assert (
        "latent vector, not an image" in r.json()["detail"]
        and "/gan/dcgan_digits/generate" in r.json()["detail"]
    )
    assert client.get("/healthz").status_code == 200


@pytest.mark.slow
def test_audits_of_both_halves(client):
    r = client.post("/api/v1/audits", json={"model": G, "dataset": "latent", "max_images": 256})
    assert r.status_code == 202, r.text
    g_report = _finished(client, r.json()["job_id"])
    assert g_report["dataset"]["id"] == "latent" and g_report["images"] == 256
    names = {layer["name"] for layer in g_report["layers"]}
    assert {"net.0", "net.3", "net.6"} <= names
    r = client.post("/api/v1/audits", json={"model": D, "dataset": "digits", "max_images": 256})
    assert r.status_code == 202, r.text
    d_report = _finished(client, r.json()["job_id"])
    assert {"features.0", "features.2", "classifier.0"} <= {layer["name"] for layer in d_report["layers"]}
    r = client.post("/api/v1/audits", json={"model": G, "dataset": "digits"})
    assert r.status_code == 422 and "latent" in r.json()["detail"]
