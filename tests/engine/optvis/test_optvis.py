"""DeepVis: objectives, parametrisations, transforms, regularisers and the render loop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from server.engine.hooks import active_hook_count
from server.engine.optvis import channel, class_logit, neuron, preset_config, render
from server.engine.optvis.objectives import LOGITS
from server.engine.optvis.param import fft_image, pixel_image
from server.engine.optvis.presets import RenderConfig
from server.engine.optvis.render import apply_pixel_regularisers
from server.engine.optvis.transforms import TransformConfig, gaussian_blur, random_affine
from server.errors import InvalidInputError


def lookup() -> dict[str, torch.Tensor]:
    t = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)
    return {"a": t, LOGITS: torch.tensor([[1.0, 5.0], [2.0, -1.0]])}


def test_objectives_read_the_lookup_and_compose() -> None:
    acts = lookup()
    assert channel("a", 1)(acts).tolist() == [5.5, 17.5]
    assert neuron("a", 5)(acts).tolist() == [5.0, 17.0]
    assert class_logit(1)(acts).tolist() == [5.0, -1.0]
    combo = channel("a", 1) + 2 * class_logit(0) - neuron("a", 0)
    assert combo(acts).tolist() == [5.5 + 2 - 0, 17.5 + 4 - 12]
    assert combo.layers == frozenset({"a", LOGITS})
    with pytest.raises(InvalidInputError, match="Channel 3 is out of range"):
        channel("a", 3)(acts)
    with pytest.raises(InvalidInputError, match="Neuron 12"):
        neuron("a", 12)(acts)
    with pytest.raises(InvalidInputError, match="Class 2"):
        class_logit(2)(acts)


def test_parametrisations_give_valid_images() -> None:
    g = torch.Generator().manual_seed(0)
    fft = fft_image((3, 32, 24), 0.01, 1.0, True, g)
    img = fft.image()
    assert img.shape == (1, 3, 32, 24) and float(img.detach().min()) >= 0 and float(img.detach().max()) <= 1
    img.mean().backward()
    assert fft.tensors[0].grad is not None and fft.pixels is None
    px = pixel_image((1, 8, 8), (0.0,), 0.1, torch.Generator().manual_seed(0))
    assert px.image().shape == (1, 1, 8, 8) and float(px.image().min()) >= 0


@pytest.mark.parametrize(
    "shape", [(3, 8, 8), (3, 32, 24), (1, 28, 28), (3, 65, 33), (3, 224, 224), (3, 299, 299)]
)
def test_fresh_fft_image_is_grey_with_faint_low_frequency_noise(shape: tuple[int, int, int]) -> None:
    # Before the fix the spectrum was scaled by sqrt(h*w) *and* inverted orthonormally: a fresh 224 px image
    # spanned 8e-6..0.99998 (saturated) instead of a grey near 0.5.
    for seed in range(3):
        img = fft_image(shape, 0.01, 1.0, True, torch.Generator().manual_seed(seed)).image().detach()[0]
        dev = img - 0.5
        assert abs(float(img.mean()) - 0.5) < 0.01, (shape, seed, float(img.mean()))
        assert float(dev.abs().max()) < 0.05, (shape, seed, float(dev.abs().max()))
        assert float(dev.std()) > 1e-4  # noise, not a flat grey
        if min(shape[1:]) >= 24:  # 1/f noise: neighbouring pixels are alike (white noise would give ~0)
            a, b = dev[:, :, :-1].flatten(), dev[:, :, 1:].flatten()
            assert float(torch.corrcoef(torch.stack([a, b]))[0, 1]) > 0.5


def test_fft_image_matches_lucids_unnormalised_inverse() -> None:
    # Lucid (TF) multiplies the spectrum by sqrt(h*w) and uses an unnormalised inverse, which divides by h*w.
    h, w = 40, 30
    p = fft_image((3, h, w), 0.05, 1.0, False, torch.Generator().manual_seed(0))
    spectrum = torch.view_as_complex(p.tensors[0].detach()) * p.scale * (h * w) ** 0.5
    lucid = torch.sigmoid(torch.fft.irfft2(spectrum, s=(h, w), norm="backward")[None] / 4.0)
    torch.testing.assert_close(p.image().detach(), lucid)


def test_transforms_are_seeded_and_identity_is_free() -> None:
    img = torch.rand(1, 3, 32, 32)
    assert random_affine(img, TransformConfig(), torch.Generator()) is img
    cfg = TransformConfig(jitter=3, scales=(0.9, 1.1), degrees=10)
    a = random_affine(img, cfg, torch.Generator().manual_seed(5))
    b = random_affine(img, cfg, torch.Generator().manual_seed(5))
    c = random_affine(img, cfg, torch.Generator().manual_seed(6))
    assert a.shape == img.shape and torch.equal(a, b) and not torch.equal(a, c)


def test_blur_keeps_constants_and_smooths_noise() -> None:
    flat = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(gaussian_blur(flat, 1.0), flat)
    noise = torch.rand(1, 3, 16, 16)
    assert gaussian_blur(noise, 1.0).std() < noise.std() / 2
    assert gaussian_blur(torch.rand(1, 1, 2, 2), 5.0).shape == (1, 1, 2, 2)  # kernel trimmed to the image


def test_pixel_regularisers() -> None:
    g = torch.Generator().manual_seed(0)
    p = pixel_image((3, 10, 10), (0.5, 0.5, 0.5), 0.2, g)
    before = p.pixels.detach().clone()
    cfg = RenderConfig(l2_decay=0.5, clip_norm_pct=20)
    apply_pixel_regularisers(p, cfg, 0)
    dev_before = (before - 0.5).norm(dim=1)
    dev_after = (p.pixels - 0.5).norm(dim=1)
    weakest = dev_before <= torch.quantile(dev_before.reshape(-1), 0.2)
    assert torch.all(dev_after[weakest] == 0)  # clipped to grey
    torch.testing.assert_close(dev_after[~weakest], dev_before[~weakest] * 0.5)  # L2 decay halves the rest


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"steps": 0}, "steps must be positive"),
        ({"steps": -3}, "steps must be positive"),
        ({"blur_every": 2, "blur_sigma": 0.0}, "blur_sigma"),
        ({"blur_every": 2, "blur_sigma": 500.0}, "blur_sigma"),
        ({"blur_every": -1}, "blur_every"),
        ({"clip_norm_pct": 100}, "clip_norm_pct"),
        ({"lr": 0}, "lr must be positive"),
        ({"wobble": 1}, "Unknown knob"),
    ],
)
def test_bad_knobs_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        preset_config("deepvis", (224, 224), **overrides)


def test_unknown_preset_and_pixel_only_knobs() -> None:
    with pytest.raises(InvalidInputError, match="Unknown preset"):
        preset_config("magic", (8, 8))
    with pytest.raises(InvalidInputError, match="param='pixel'"):
        preset_config("lucid", (224, 224), blur_every=4, blur_sigma=1.0)
    assert preset_config("lucid", (224, 224), transforms={"degrees": 5}).transforms.degrees == 5


def run_digits(digits_model, objective, preset: str, steps: int, seed: int, **kw):
    card = digits_model.card
    cfg = preset_config(preset, card.input_size[1:], steps=steps, seed=seed, **kw)
    with digits_model.lock:
        return render(
            digits_model.model, objective, cfg, input_size=card.input_size, mean=card.mean, std=card.std
        )


@pytest.mark.parametrize("preset", ["deepvis", "lucid"])
def test_same_seed_same_image(digits_model, preset: str) -> None:
    a = run_digits(digits_model, class_logit(3), preset, 6, seed=11)
    b = run_digits(digits_model, class_logit(3), preset, 6, seed=11)
    c = run_digits(digits_model, class_logit(3), preset, 6, seed=12)
    assert np.array_equal(a.image, b.image) and a.values == b.values
    assert not np.array_equal(a.image, c.image)
    assert active_hook_count(digits_model.model) == 0


def test_callback_can_stop_the_render_and_leaves_no_hooks(digits_model) -> None:
    seen = []

    def on_step(step: int, value: float, image: torch.Tensor) -> None:
        seen.append(step)
        if step == 2:
            raise KeyboardInterrupt  # any exception: a job raises JobCancelled here

    with pytest.raises(KeyboardInterrupt):
        card = digits_model.card
        cfg = preset_config("deepvis", (8, 8), steps=50)
        render(
            digits_model.model,
            channel("features.3", 4),
            cfg,
            input_size=card.input_size,
            mean=card.mean,
            std=card.std,
            on_step=on_step,
        )
    assert seen == [0, 1, 2]
    assert active_hook_count(digits_model.model) == 0


def test_filter_objective_rises_and_out_of_range_is_refused(digits_model) -> None:
    r = run_digits(digits_model, channel("features.3", 4), "deepvis", 12, 0)
    assert r.final_value > r.start_value
    with pytest.raises(InvalidInputError, match="Channel 99"):
        run_digits(digits_model, channel("features.3", 99), "deepvis", 2, 0)
    assert active_hook_count(digits_model.model) == 0


@pytest.mark.slow
def test_deepvis_digits_every_class_is_recognised(digits_model) -> None:
    for c in range(10):
        r = run_digits(digits_model, class_logit(c), "deepvis", 16, seed=0)
        x = torch.from_numpy(r.image).permute(2, 0, 1)[None]
        with torch.no_grad():
            prob = torch.softmax(digits_model.model(x.contiguous()), dim=1)[0, c]
        assert prob >= 0.9, (c, float(prob))


@pytest.mark.slow
def test_deepvis_lite0_filter_ten_times_above_start_noise(lite0) -> None:
    card = lite0.card
    cfg = preset_config("deepvis", (224, 224), steps=16, seed=0)
    with lite0.lock:
        r = render(
            lite0.model, channel("blocks.4", 3), cfg, input_size=card.input_size, mean=card.mean, std=card.std
        )
    assert r.start_value > 0
    assert r.final_value >= 10 * r.start_value, (r.start_value, r.final_value)
    assert active_hook_count(lite0.model) == 0
