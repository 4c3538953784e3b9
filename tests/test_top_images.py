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
