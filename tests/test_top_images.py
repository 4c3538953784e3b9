"""TopImagesService: checks before the job, and the k strongest images with crops and deconvolutions."""

from __future__ import annotations

import numpy as np
import pytest

from server.errors import InvalidInputError, NotFoundError
from server.top_images import TOP_IMAGES_TASK
from tests.datasets.test_store import png


@pytest.fixture
def tiny(services):
    rng = np.random.default_rng(0)
    files = [(f"{i}.png", png(int(v), size=8)) for i, v in enumerate(rng.integers(0, 250, 12))]
    services.datasets.create_from_files("tiny", files, ["a", "b"] * 6)
    return services


def test_plan_checks_the_filter_and_the_dataset(tiny):
    request = {"dataset": "tiny", "layer": "features.3", "channel": 5, "k": 3}
    plan = tiny.top_images.plan("digits_cnn", False, request)
    assert plan.kind == TOP_IMAGES_TASK and plan.params == {
        **request,
        "model": "digits_cnn",
        "untrained": False,
    }
    assert plan.details["num_images"] == 12 and plan.details["dataset"] == "tiny"
    assert tiny.top_images.plan("digits_cnn", False, {**request, "k": 4}).cache_key != plan.cache_key
    with pytest.raises(InvalidInputError, match="Channel 64"):
        tiny.top_images.plan("digits_cnn", False, {**request, "channel": 64})
    with pytest.raises(NotFoundError, match="dataset"):
        tiny.top_images.plan("digits_cnn", False, {**request, "dataset": "tinny"})


def test_run_returns_the_strongest_images_first_with_their_crops(tiny):
    progress: list[float] = []
    plan = tiny.top_images.plan(
        "digits_cnn", False, {"dataset": "tiny", "layer": "features.3", "channel": 5, "k": 3}
    )
    out = tiny.top_images.run(plan.params, lambda f, _m: progress.append(f))
    values = [item["value"] for item in out["images"]]
    assert len(values) == 3 and values == sorted(values, reverse=True)
    assert progress[-1] == pytest.approx(1.0) and progress == sorted(progress)
    for item in out["images"]:
        for name in ("image_url", "crop_url", "deconv_url", "deconv_crop_url"):
            key, file = item[name].rsplit("/", 2)[1:]
            assert tiny.artifacts.exists(key, file)


@pytest.mark.slow
def test_lite0_top9_of_the_skimage_photos_at_224_px(services, lite0):
    """Top-9 on the default ImageNet model at full resolution: the nine photos a brute-force forward ranks
    highest for blocks.5:7, in its order, each with a crop box inside the 224 px input and its deconvolution."""
    import torch

    from server.engine.hooks import active_hook_count, forward_until
    from server.engine.imaging import preprocess

    info = services.datasets.get("skimage_photos")  # the built-in, written on first use
    plan = services.top_images.plan(
        "efficientnet_lite0", False, {"dataset": "skimage_photos", "layer": "blocks.5", "channel": 7, "k": 9}
    )
    out = services.top_images.run(plan.params)
    peaks = []
    with lite0.lock, torch.inference_mode():
        for _rec, img in services.datasets.iter_images(info.id):
            x = lite0.to_input(preprocess(img, lite0.prep)[0])
            peaks.append(float(forward_until(lite0.model, ["blocks.5"], x)["blocks.5"][0, 7].max()))
    want = np.argsort(-np.asarray(peaks), kind="stable")[:9]
    assert info.num_images == len(peaks) > 9
    assert [item["index"] for item in out["images"]] == want.tolist()
    np.testing.assert_allclose([item["value"] for item in out["images"]], np.asarray(peaks)[want], rtol=1e-4)
    for item in out["images"]:
        top, left, bottom, right = item["box"]
        assert 0 <= top < bottom <= 224 and 0 <= left < right <= 224
        assert item["label"] in info.classes
        for name in ("image_url", "crop_url", "deconv_url", "deconv_crop_url"):
            key, file = item[name].rsplit("/", 2)[1:]
            assert services.artifacts.exists(key, file)
    assert active_hook_count(lite0.model) == 0


def test_layer_top_images_match_the_single_filter_job_and_are_kept(tiny):
    lm = tiny.zoo.load("digits_cnn")
    layer_tops = tiny.top_images.layer_top_images(lm, "tiny", "features.3", [2, 5], k=3)
    single = tiny.top_images.run(
        {"model": "digits_cnn", "dataset": "tiny", "layer": "features.3", "channel": 5, "k": 3}
    )
    assert [i["index"] for i in layer_tops[5]] == [i["index"] for i in single["images"]]
    assert [i["box"] for i in layer_tops[5]] == [i["box"] for i in single["images"]]
    for name in ("image_url", "crop_url", "deconv_url", "deconv_crop_url"):
        key, file = layer_tops[2][0][name].rsplit("/", 2)[1:]
        assert tiny.artifacts.exists(key, file)
    tiny.features.features = lambda *_a, **_k: pytest.fail("read the dataset again")
    assert tiny.top_images.layer_top_images(lm, "tiny", "features.3", [2, 5], k=3) == layer_tops  # kept
