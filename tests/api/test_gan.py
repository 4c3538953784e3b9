"""The GAN resources through the real ASGI app, on the real trained dcgan_digits and digits_cnn."""

import io

import numpy as np
import pytest
from PIL import Image

GAN = "/api/v1/gan/dcgan_digits"


def _npy(client, url):
    r = client.get(url)
    assert r.status_code == 200
    return np.load(io.BytesIO(r.content), allow_pickle=False)


def test_same_seed_same_image(client):
    a = client.post(f"{GAN}/generate", json={"seed": 3, "n": 4}).json()
    b = client.post(f"{GAN}/generate", json={"seed": 3, "n": 9}).json()  # image i never depends on n
    c = client.post(f"{GAN}/generate", json={"seed": 4, "n": 4}).json()
    for i in range(4):
        x, y = _npy(client, a["images"][i]["npy_url"]), _npy(client, b["images"][i]["npy_url"])
        assert x.shape == (8, 8) and np.array_equal(x, y)
        assert a["images"][i]["d_score"] == pytest.approx(b["images"][i]["d_score"], abs=1e-6)
    assert not np.array_equal(
        _npy(client, a["images"][0]["npy_url"]), _npy(client, c["images"][0]["npy_url"])
    )


def test_generate_returns_a_grid_arrays_and_scores(client):
    r = client.post(f"{GAN}/generate", json={"seed": 0, "n": 16})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (
        body["generator"] == "dcgan_digits_generator"
        and body["discriminator"] == "dcgan_digits_discriminator"
    )
    assert body["n"] == 16 and len(body["images"]) == 16 and len(body["latent"]) == 16
    scores = [im["d_score"] for im in body["images"]]
    assert all(0 < s < 1 for s in scores) and len(set(scores)) > 1
    assert body["mean_d_score"] == pytest.approx(np.mean(scores))
    grid = Image.open(io.BytesIO(client.get(body["grid_url"]).content))
    assert grid.format == "PNG" and grid.size[0] == 6 * (4 * 9 + 1)  # 4x4 tiles of 8x8 + frame, upscaled 6x
    pixels = _npy(client, body["images"][0]["npy_url"])
    assert pixels.min() >= 0 and pixels.max() <= 1 and pixels.std() > 0.1  # a digit, not a flat tile


def test_explicit_latent_reproduces_the_seeded_image(client):
    seeded = client.post(f"{GAN}/generate", json={"seed": 11, "n": 2}).json()
    explicit = client.post(f"{GAN}/generate", json={"latent": seeded["latent"]}).json()
    assert explicit["seed"] is None and explicit["n"] == 2
    for i in range(2):
        assert np.allclose(
            _npy(client, seeded["images"][i]["npy_url"]),
            _npy(client, explicit["images"][i]["npy_url"]),
            atol=1e-6,
        )


def test_interpolation_runs_from_one_seed_to_the_other(client):
    strip = client.post(f"{GAN}/interpolate", json={"seed_a": 1, "seed_b": 2, "steps": 6}).json()
    assert strip["steps"] == 6 and len(strip["images"]) == 6
    ends = [client.post(f"{GAN}/generate", json={"seed": s, "n": 1}).json() for s in (1, 2)]
    for strip_i, end in ((0, ends[0]), (5, ends[1])):
        a = _npy(client, strip["images"][strip_i]["npy_url"])
        b = _npy(client, end["images"][0]["npy_url"])
        assert np.allclose(a, b, atol=1e-5)
    middle = _npy(client, strip["images"][3]["npy_url"])
    assert not np.allclose(middle, _npy(client, ends[0]["images"][0]["npy_url"]), atol=1e-3)


def test_training_game_d_on_generated_rises_from_near_zero_towards_half(client):
    body = client.get(f"{GAN}/training").json()
    snaps = body["snapshots"]
    assert len(snaps) >= 5 and [s["step"] for s in snaps] == sorted(s["step"] for s in snaps)
    fake = [s["d_fake"] for s in snaps]
    low = int(np.argmin(fake))
    # D learns to reject the first fakes (near 0), then G catches up: D has to guess (0.5)
    assert fake[low] < 0.15 and low < len(fake) // 2, fake
    assert fake[-1] > fake[low] + 0.2 and abs(fake[-1] - 0.5) < abs(fake[low] - 0.5), fake
    assert np.mean(fake[-3:]) > np.mean(fake[low : low + 3]), fake
    for s in snaps:
        assert s["g_loss"] > 0 and s["d_loss"] > 0 and 0 < s["d_real"] < 1
    grids = [client.get(s["samples_url"]).content for s in (snaps[0], snaps[-1])]
    assert grids[0] != grids[1]  # the same seeds, other weights
    assert Image.open(io.BytesIO(grids[-1])).format == "PNG"


@pytest.mark.slow
def test_modes_of_1000_samples_cover_the_digits_confidently(client):
    body = client.get(f"{GAN}/modes", params={"n": 1000}).json()
    assert body["classifier"] == "digits_cnn" and sum(body["histogram"]) == 1000
    assert body["classes_present"] >= 8, body["histogram"]
    assert body["mean_confidence"] >= 0.8, body["mean_confidence"]
    assert (body["warning"] is None) == (body["missing"] == [])


@pytest.mark.parametrize(
    ("path", "payload", "match"),
    [
        ("generate", {"seed": 0, "n": 257}, "n must be between 1 and 256"),
        ("generate", {"seed": 0, "n": 0}, "n"),
        ("generate", {"latent": [[0.0] * 31]}, "32 numbers per vector"),
        ("generate", {"latent": [[0.0] * 33, [0.0] * 33]}, "32 numbers per vector"),
        ("interpolate", {"seed_a": 0, "seed_b": 1, "steps": 1}, "steps must be between 2"),
        ("interpolate", {"seed_a": 0, "seed_b": 1, "steps": 0}, "steps must be between 2"),
        ("interpolate", {"seed_a": 0, "seed_b": 1, "steps": 65}, "steps must be between 2 and 64"),
    ],
)
def test_bad_input_is_422_with_a_reason(client, path, payload, match):
    r = client.post(f"{GAN}/{path}", json=payload)
    assert r.status_code == 422, r.text
    assert match in r.json()["detail"]


def test_modes_n_over_the_limit_is_422_and_unknown_gan_404(client):
    r = client.get(f"{GAN}/modes", params={"n": 5001})
    assert r.status_code == 422 and "n must be between 10 and 5000" in r.json()["detail"]
    r = client.post("/api/v1/gan/dcgan_digit/generate", json={"n": 1})
    assert r.status_code == 404 and "dcgan_digits" in r.json()["detail"]


def test_both_halves_are_in_the_zoo_with_their_kind(client):
    models = {m["id"]: m for m in client.get("/api/v1/models").json()}
    assert models["dcgan_digits_generator"]["kind"] == "generator"
    assert models["dcgan_digits_discriminator"]["kind"] == "discriminator"
    assert models["digits_cnn"]["kind"] == "classifier"
    layers = client.get("/api/v1/models/dcgan_digits_generator/layers").json()["layers"]
    shapes = {layer["name"]: layer["output_shape"] for layer in layers}
    assert shapes["net.0"] == [64, 2, 2] and shapes["net.7"] == [1, 8, 8]
