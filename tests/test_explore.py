"""ExploreService with dynamic batching, on the real models: batched answers equal unbatched ones."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from PIL import Image

from server.explore import ExploreService


def photos() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(getattr(data, name)()) for name in ("chelsea", "coffee", "astronaut", "rocket")]


def digits(n: int) -> list[Image.Image]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return [Image.fromarray((d.images[i] / 16 * 255).astype(np.uint8)) for i in range(n)]


def concurrently(fn, items):
    start = threading.Barrier(len(items))

    def one(item):
        start.wait()
        return fn(item)

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(one, items))


def service(services, batch_max: int) -> ExploreService:
    return ExploreService(services.settings.model_copy(update={"batch_max": batch_max}), services.artifacts)


@pytest.mark.slow
@pytest.mark.parametrize("layer", ["blocks.3", None])  # None: the predictions (full forward)
def test_batched_lite0_answers_equal_unbatched_ones_at_224_px(services, lite0, layer):
    imgs = [(img, f"{i:064x}") for i, img in enumerate(photos())]
    batched, alone = service(services, 16), service(services, 1)

    def ask(svc: ExploreService):
        if layer is None:
            return lambda item: svc.predict(lite0, item[0], item[1], top_k=5)
        return lambda item: svc.activations(lite0, item[0], item[1], layer)

    together = concurrently(ask(batched), imgs)
    separate = [ask(alone)(item) for item in imgs]
    assert batched.batcher.stats.inputs == len(imgs) and alone.batcher.stats.forwards == 0
    if layer is None:  # the first photo's full forward (~0.1 s) runs alone; the others arrive meanwhile
        assert batched.batcher.stats.forwards < len(imgs) and batched.batcher.stats.largest >= 2
    for a, b in zip(together, separate, strict=True):
        if layer is None:
            assert [p["index"] for p in a["predictions"]] == [p["index"] for p in b["predictions"]]
            np.testing.assert_allclose(
                [p["probability"] for p in a["predictions"]],
                [p["probability"] for p in b["predictions"]],
                atol=1e-5,
            )
        else:
            np.testing.assert_allclose(
                [c["mean"] for c in a["channels"]], [c["mean"] for c in b["channels"]], rtol=1e-5, atol=1e-5
            )
            np.testing.assert_allclose(
                [c["max"] for c in a["channels"]], [c["max"] for c in b["channels"]], rtol=1e-5, atol=1e-5
            )
    if layer is None:
        assert "tiger cat" in together[0]["predictions"][0]["label"]


def test_concurrent_digit_predictions_are_batched_and_each_gets_its_own(services, digits_model):
    svc = service(services, 16)
    imgs = [(img, f"{i:064x}") for i, img in enumerate(digits(24))]
    out = concurrently(lambda item: svc.predict(digits_model, item[0], item[1], top_k=1), imgs)
    from sklearn.datasets import load_digits

    truth = load_digits().target[:24]
    top1 = [int(o["predictions"][0]["index"]) for o in out]
    assert np.mean(np.array(top1) == truth) >= 0.9
    assert [o["image_sha256"] for o in out] == [sha for _, sha in imgs]
    assert svc.batcher.stats.inputs == 24


@pytest.mark.slow
def test_a_batched_lite0_layer_equals_its_rows_computed_alone(lite0):
    """blocks.3 of four photos at 224 px as one batch (the first forward is held for 0.3 s, so the other
    three queue behind it and run together) against each photo alone."""
    import time

    import torch

    from server.engine.batching import Batcher
    from server.explore import _layer_output

    xs = [lite0.preprocess(img)[0] for img in photos()]
    batcher, sizes = Batcher(16), []

    def fn(batch: torch.Tensor) -> torch.Tensor:
        sizes.append(batch.shape[0])
        if len(sizes) == 1:
            time.sleep(0.3)
        return _layer_output(lite0, "blocks.3", batch)

    together = concurrently(lambda x: batcher.run("blocks.3", x, fn), xs)
    assert sorted(sizes) == [1, 3]
    for x, out in zip(xs, together, strict=True):
        alone = _layer_output(lite0, "blocks.3", x)
        torch.testing.assert_close(out, alone, rtol=1e-5, atol=1e-5 * float(alone.abs().max()))


def skimage_photos() -> list[Image.Image]:
    """The bundled photos, as the built-in ``skimage_photos`` dataset holds them (RGB)."""
    from server.datasets.builtin import _skimage_photos

    return [img for _category, _png, img in _skimage_photos()]


@pytest.mark.slow
def test_fast_precision_keeps_top1_on_the_photos_and_the_digits_and_says_so(services, lite0, digits_model):
    """precision="fast" (bf16 autocast where the CPU has bf16): the same top-1 class for at least 99% of
    the bundled photos on Lite0 at 224 px and of 1,000 digits on digits_cnn; every answer is labelled."""
    import torch

    from server.engine.inference import fast_precision, precision_mode
    from server.zoo.digits import digits_split

    svc = service(services, 1)
    photos_seen = skimage_photos()
    agree = 0
    for i, img in enumerate(photos_seen):  # through the service, as the API answers
        exact = svc.predict(lite0, img, f"{i:064x}", top_k=1)
        fast = svc.predict(lite0, img, f"{i:064x}", top_k=1, precision="fast")
        assert exact["precision"] == "exact"
        if fast_precision(lite0.device):
            assert fast["precision"].startswith("fast (bf16")
        else:
            assert fast["precision"] == "exact (no bf16 on this device)"
        agree += exact["predictions"][0]["index"] == fast["predictions"][0]["index"]
    x = torch.from_numpy(digits_split().x_train[:1000])
    with torch.inference_mode():
        exact_top = digits_model.model(digits_model.to_input(x)).argmax(1)
        with precision_mode("fast", digits_model.device):
            fast_top = digits_model.model(digits_model.to_input(x)).float().argmax(1)
    agree += int((exact_top == fast_top).sum())
    n = len(photos_seen) + len(x)
    assert len(photos_seen) >= 10 and len(x) == 1000 and agree / n >= 0.99
    acts = svc.activations(lite0, skimage_photos()[0], "f" * 64, "blocks.3", precision="fast")
    exact_acts = svc.activations(lite0, skimage_photos()[0], "f" * 64, "blocks.3")
    assert acts["npy_url"] != exact_acts["npy_url"]  # fast results never overwrite the exact files
    with pytest.raises(ValueError, match="precision"):
        svc.predict(lite0, skimage_photos()[0], "e" * 64, precision="half")


def test_compiled_answers_equal_eager_ones_and_say_which_ran(services, digits_model, tmp_path):
    from server.engine.compiled import Compiler

    compiler = Compiler("auto", tmp_path / "compile-cache")
    compiled, eager = ExploreService(services.settings, services.artifacts, compiler), service(services, 16)
    imgs = [(img, f"{i:064x}") for i, img in enumerate(digits(4))]
    first = compiled.predict(digits_model, *imgs[0])
    assert first["compiled"] is False  # the compile is queued; this answer ran eager
    assert compiled.activations(digits_model, *imgs[0], "features.4")["compiled"] is False
    assert compiler.wait_idle(300)
    for img, sha in imgs[1:]:
        got, want = compiled.predict(digits_model, img, sha), eager.predict(digits_model, img, sha)
        assert got["compiled"] is True and want["compiled"] is False
        assert [p["index"] for p in got["predictions"]] == [p["index"] for p in want["predictions"]]
        np.testing.assert_allclose(
            [p["probability"] for p in got["predictions"]],
            [p["probability"] for p in want["predictions"]],
            atol=1e-5,
        )
        got = compiled.activations(digits_model, img, sha + "c", "features.4")
        want = eager.activations(digits_model, img, sha + "e", "features.4")
        assert got["compiled"] is True
        np.testing.assert_allclose(
            [c["mean"] for c in got["channels"]], [c["mean"] for c in want["channels"]], rtol=1e-4, atol=1e-6
        )
    fast = compiled.predict(digits_model, *imgs[0], precision="fast")
    assert fast["compiled"] is False  # autocast stays eager by design
    compiler.close()
