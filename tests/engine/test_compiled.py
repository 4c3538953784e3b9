"""Compiled inference (issue 19): hook-free private copies, graphs cut at a layer, the background
compiler, and compiled answers equal to eager ones within 1e-4 relative on digits_cnn and Lite0."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from server.engine.compiled import BUCKETS, Compiler, bucket, private_copy, truncated
from server.engine.features import extract, image_batches
from server.engine.hooks import active_hook_count, capture, forward_until

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def compiler(tmp_path_factory: pytest.TempPathFactory) -> Compiler:
    c = Compiler("auto", tmp_path_factory.mktemp("compile-cache"))
    yield c
    c.close()


@pytest.fixture(scope="module")
def photos() -> list[Image.Image]:
    from skimage import data

    return [Image.fromarray(data.chelsea()), Image.fromarray(data.coffee())]


@pytest.fixture(scope="module")
def digits_images() -> list[Image.Image]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return [Image.fromarray((d.images[i] / 16 * 255).astype(np.uint8)) for i in range(12)]


def relative_error(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got - want).abs().max() / want.abs().max())


def compiled_now(compiler: Compiler, model: nn.Module, layer: str | None, x: torch.Tensor):
    """The compiled forward for ``x``, its compile queued and waited for when it is not ready yet
    (failing with the logged reason when it cannot be compiled)."""
    if (ready := compiler.forward(model, layer, x)) is not None:
        return ready
    assert compiler.wait_idle(600)
    status = compiler.status(model, layer)
    assert status["failed"] is None, status["failed"]
    fn = compiler.forward(model, layer, x)
    assert fn is not None
    return fn


def test_a_private_copy_shares_the_weights_and_none_of_the_hooks(digits_model):
    model = digits_model.model
    with capture(model, ["features.0"]) as cap:  # a request's hook, installed while the copy is made
        clone = private_copy(model)
        assert active_hook_count(model) > 0
        cap.run(digits_model.example_input())
    assert active_hook_count(clone) == 0
    assert active_hook_count(model) == 0
    for (name, p), (name2, q) in zip(model.named_parameters(), clone.named_parameters(), strict=True):
        assert name == name2 and p.data_ptr() == q.data_ptr()  # no second copy of the weights
    assert clone is not model and clone.features is not model.features


def test_a_truncated_graph_ends_at_each_layer_with_its_eager_output(digits_model):
    model, x = digits_model.model, digits_model.example_input(3)
    for info in digits_model.layers():
        gm = truncated(private_copy(model), info.name)
        with torch.inference_mode():
            got = gm(x)
        want = forward_until(model, [info.name], x)[info.name]
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    with torch.inference_mode():
        torch.testing.assert_close(truncated(private_copy(model), None)(x), model(x), rtol=0, atol=0)


def test_a_truncated_graph_drops_the_network_after_the_layer(lite0):
    gm = truncated(private_copy(lite0.model), "blocks.1")
    calls = {n.target for n in gm.graph.nodes if n.op == "call_module"}
    assert not any(str(t).startswith(("blocks.2", "conv_head", "classifier")) for t in calls)


def test_every_lite0_layer_truncates_to_its_eager_output_or_is_refused_with_a_reason(lite0):
    from server.engine.compiled import CompileUnsupported

    clone, x = private_copy(lite0.model), lite0.example_input(1)
    layers = [info.name for info in lite0.layers()][::9]  # 31 of the 272, every kind
    outcomes = {"same": 0, "refused": 0}
    for name in layers:
        try:
            gm = truncated(clone, name)
        except CompileUnsupported as exc:  # a layer inside one of timm's untraceable modules: eager
            assert name in str(exc)
            outcomes["refused"] += 1
            continue
        with torch.inference_mode():
            torch.testing.assert_close(gm(x), forward_until(lite0.model, [name], x)[name], rtol=0, atol=0)
        outcomes["same"] += 1
    assert outcomes["same"] >= len(layers) // 2 and outcomes["refused"] >= 1, outcomes


def test_batches_are_padded_to_few_buckets():
    assert [bucket(n) for n in (1, 2, 3, 5, 8, 9, 100, 128)] == [1, 2, 4, 8, 8, 16, 128, 128]
    assert bucket(BUCKETS[-1] + 1) is None


def test_off_compiles_nothing(digits_model):
    c = Compiler("off")
    assert c.forward(digits_model.model, None, digits_model.example_input()) is None
    assert c.status(digits_model.model)["queued"] == 0


def test_compiled_digits_predict_activations_and_features_equal_eager(compiler, digits_model, digits_images):
    model = digits_model.model
    x = digits_model.example_input(1)
    with torch.inference_mode():
        logits = model(x)
    assert compiler.forward(model, None, x) is None  # queued: the caller runs eager, never compiles
    assert relative_error(compiled_now(compiler, model, None, x)(x), logits) <= 1e-4
    act = forward_until(model, ["features.4"], x)["features.4"]
    assert relative_error(compiled_now(compiler, model, "features.4", x)(x), act) <= 1e-4

    batches = list(image_batches(digits_images, digits_model.prep, batch_size=5))  # 5, 5, 2 -> buckets 8, 2
    eager = extract(model, "features.4", batches, "mean").features
    for b in batches:
        compiled_now(compiler, model, "features.4", digits_model.to_input(b))
    got = extract(
        model, "features.4", batches, "mean", compiled=lambda b: compiler.forward(model, "features.4", b)
    ).features
    assert got.shape == eager.shape
    assert relative_error(torch.from_numpy(got), torch.from_numpy(eager)) <= 1e-4
    assert compiler.status(model, "features.4")["ready"] == 3  # buckets 1, 8 and 2
    assert active_hook_count(model) == 0


def test_a_padded_batch_gives_each_row_its_own_answer(compiler, digits_model):
    model = digits_model.model
    x = digits_model.example_input(3)
    fn = compiled_now(compiler, model, None, x)  # bucket 4: one zero row added, dropped from the answer
    with torch.inference_mode():
        want = model(x)
    got = fn(x)
    assert got.shape == want.shape
    assert relative_error(got, want) <= 1e-4


def test_compiled_lite0_predict_activations_and_features_equal_eager_at_224_px(compiler, lite0, photos):
    model = lite0.model
    x = torch.cat([lite0.preprocess(img)[0] for img in photos[:2]])
    with torch.inference_mode():
        logits = model(x)
    assert relative_error(compiled_now(compiler, model, None, x)(x), logits) <= 1e-4
    act = forward_until(model, ["blocks.3"], x)["blocks.3"]
    fn = compiled_now(compiler, model, "blocks.3", x)
    assert relative_error(fn(x), act) <= 1e-4
    eager = extract(model, "blocks.3", [x], "mean").features
    got = extract(model, "blocks.3", [x], "mean", compiled=lambda b: compiler.forward(model, "blocks.3", b))
    assert relative_error(torch.from_numpy(got.features), torch.from_numpy(eager)) <= 1e-4
    assert compiler.stats.served > 0


class _DataDependent(nn.Module):
    """torch.fx cannot trace Python control flow on a tensor's values."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y if y.sum() > 0 else -y


def test_a_model_that_cannot_compile_stays_eager_with_its_reason_logged(compiler, caplog):
    model = _DataDependent().eval()
    x = torch.randn(1, 1, 8, 8)
    with caplog.at_level(logging.INFO, logger="convlens.compile"):
        assert compiler.forward(model, None, x) is None
        assert compiler.wait_idle(60)
    status = compiler.status(model)
    assert status["failed"] and "torch.fx cannot trace" in status["failed"]
    assert compiler.forward(model, None, x) is None  # never retried: eager from now on
    assert any("stays eager" in r.getMessage() for r in caplog.records)


def test_compiled_code_is_cached_on_disk(compiler):
    assert compiler.cache_dir is not None
    assert any(Path(compiler.cache_dir).rglob("*")), "Inductor wrote nothing under the cache directory"


def test_a_graph_is_compiled_only_once_enough_forwards_asked_for_it(digits_model, tmp_path):
    c = Compiler("auto", tmp_path / "cache", min_hits=3)
    model, x = digits_model.model, digits_model.example_input(2)
    for _ in range(2):
        assert c.forward(model, "features.1", x) is None
        assert c.status(model, "features.1")["queued"] == 0  # browsed twice: not worth a compile yet
    assert c.forward(model, "features.1", x) is None
    assert c.status(model, "features.1")["queued"] + c.status(model, "features.1")["ready"] == 1
    assert c.forward(model, "features.3", x, now=True) is None  # start-up's predict: at once
    assert c.status(model, "features.3")["queued"] + c.status(model, "features.3")["ready"] == 1
    assert c.wait_idle(300)
    assert c.forward(model, "features.1", x) is not None
    c.close()


def test_eager_forwards_of_other_threads_are_untouched_while_a_graph_is_traced(lite0):
    """torch.fx patches nn.Module.__call__ for the whole process while it traces: a request's eager forward
    in another thread must neither fail nor be traced (the private copy shares the model's parameters)."""
    import threading

    model, x = lite0.model, lite0.example_input(1)
    with torch.inference_mode():
        want = model(x)
    errors: list[BaseException] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                with torch.inference_mode():
                    got = model(x)
                torch.testing.assert_close(got, want, rtol=0, atol=0)
            except BaseException as exc:
                errors.append(exc)
                return

    server = threading.Thread(target=serve)
    server.start()
    try:
        for layer in (None, "blocks.5", "conv_head"):  # each trace takes a second or more on this CPU
            truncated(private_copy(model), layer)
    finally:
        done.set()
        server.join()
    assert not errors, errors[0]


def test_without_a_cpp_compiler_nothing_is_prepared_or_compiled_and_the_reason_is_logged(
    digits_model, monkeypatch, caplog
):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("CXX", raising=False)
    c = Compiler("auto")
    with caplog.at_level(logging.WARNING, logger="convlens.compile"):
        assert c.prepare(torch.device("cpu")).is_set()  # at once: nothing to prepare
        assert c.forward(digits_model.model, None, digits_model.example_input(), now=True) is None
    assert "no C++ compiler" in c.status(digits_model.model)["failed"]
    assert c._thread is None  # no compile thread was started
    assert any("no C++ compiler" in r.getMessage() for r in caplog.records)
