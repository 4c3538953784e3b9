"""Every knob of a DeepVis render, and the three presets: ``deepvis`` (Yosinski et al. 2015: pixels,
L2 decay, periodic blur, clipping of weak pixels), ``lucid`` (FFT + decorrelated colour, jitter,
scale and rotation) and ``fooling`` (pixels, nothing else: adversarial noise)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal

from server.engine.optvis.transforms import TransformConfig
from server.errors import InvalidInputError


@dataclass(frozen=True)
class RenderConfig:
    steps: int = 256
    seed: int = 0
    lr: float = 0.05
    param: Literal["pixel", "fft"] = "pixel"
    init_sd: float = 0.1  # pixel noise (pixel) or spectrum noise (fft) at the start
    decorrelate: bool = True  # fft only: Lucid's colour decorrelation
    decay_power: float = 1.0  # fft only: 1/f^p spectrum scaling
    # Yosinski et al. 2015 regularisers (pixel parametrisation)
    l2_decay: float = 0.0  # fraction of the deviation from grey removed every step
    blur_every: int = 0  # 0 = never
    blur_sigma: float = 0.0  # pixels, at the model's input size
    clip_norm_pct: float = 0.0  # zero (set to grey) pixels whose norm is in the lowest pct percent
    clip_contrib_pct: float = 0.0  # zero pixels whose |contribution| (x - grey) . grad is in the lowest pct
    # Lucid transforms
    transforms: TransformConfig = field(default_factory=TransformConfig)
    frame_every: int = 8  # intermediate images reported every n steps

    def validate(self, image_size: tuple[int, int]) -> RenderConfig:
        """Raise InvalidInputError naming the first knob that makes no sense."""
        h, w = image_size
        if self.steps <= 0:
            raise InvalidInputError(f"steps must be positive, got {self.steps}.")
        if not self.lr > 0:
            raise InvalidInputError(f"lr must be positive, got {self.lr}.")
        if self.param not in ("pixel", "fft"):
            raise InvalidInputError(f"param must be 'pixel' or 'fft', got '{self.param}'.")
        if self.init_sd < 0:
            raise InvalidInputError(f"init_sd must be >= 0, got {self.init_sd}.")
        if not 0 <= self.l2_decay < 1:
            raise InvalidInputError(f"l2_decay must be in [0, 1), got {self.l2_decay}.")
        if self.blur_every < 0:
            raise InvalidInputError(f"blur_every must be >= 0 (0 turns blur off), got {self.blur_every}.")
        if self.blur_every > 0 and not 0 < self.blur_sigma <= max(h, w) / 2:
            raise InvalidInputError(
                f"blur_sigma must be in (0, {max(h, w) / 2:g}] pixels for a {h}x{w} image when blur is on, "
                f"got {self.blur_sigma}."
            )
        for name in ("clip_norm_pct", "clip_contrib_pct"):
            v = getattr(self, name)
            if not 0 <= v < 100:
                raise InvalidInputError(f"{name} must be a percentile in [0, 100), got {v}.")
        pixel_only = self.blur_every or self.clip_norm_pct or self.clip_contrib_pct
        if self.param != "pixel" and pixel_only:
            raise InvalidInputError("Blur and pixel clipping act on pixels: use param='pixel' with them.")
        t = self.transforms
        if t.jitter < 0 or t.degrees < 0 or not t.scales or min(t.scales) <= 0:
            raise InvalidInputError("Transforms need jitter, degrees >= 0 and positive scales.")
        if t.jitter >= min(h, w):
            raise InvalidInputError(f"jitter must be smaller than the image ({h}x{w}), got {t.jitter}.")
        if self.frame_every <= 0:
            raise InvalidInputError(f"frame_every must be positive, got {self.frame_every}.")
        return self

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["transforms"]["scales"] = list(self.transforms.scales)
        return d


def _scaled(px: float, size: int) -> int:
    """A pixel amount given for 224-pixel inputs, at ``size`` pixels."""
    return round(px * size / 224)


def _deepvis(size: int) -> RenderConfig:
    """Yosinski et al.'s regularisers, plus small random scaling and rotation: tuned on Lite0 for class
    images that another model recognises (docs/BENCHMARKS.md, "Transfer of DeepVis class images":
    10/10 with these knobs against 9/10 with blur 0.5 px and jitter 4 alone)."""
    return RenderConfig(
        param="pixel",
        lr=0.05,
        init_sd=0.05,
        l2_decay=0.0001,
        blur_every=4,
        blur_sigma=max(0.3, 1.0 * size / 224),
        clip_norm_pct=5.0,
        clip_contrib_pct=5.0,
        transforms=TransformConfig(
            jitter=_scaled(8, size), scales=(0.95, 0.975, 1.0, 1.025, 1.05), degrees=5.0
        ),
    )


def _lucid(size: int) -> RenderConfig:
    return RenderConfig(
        param="fft",
        lr=0.05,
        init_sd=0.01,
        decorrelate=True,
        transforms=TransformConfig(
            jitter=_scaled(12, size),
            scales=tuple(1 + (i - 5) / 50 for i in range(11)),
            degrees=10.0,
        ),
    )


def _fooling(size: int) -> RenderConfig:
    """Plain gradient ascent on pixels: no regulariser, no transform (Nguyen et al. 2015's adversarial
    noise). A small step keeps it near grey: the model is certain, the image means nothing to a human."""
    return RenderConfig(param="pixel", lr=0.002, init_sd=0.05)


PRESETS = {"deepvis": _deepvis, "lucid": _lucid, "fooling": _fooling}
KNOBS = tuple(f.name for f in fields(RenderConfig))


def preset_config(name: str, image_size: tuple[int, int], **overrides: Any) -> RenderConfig:
    """The preset ``name`` for an image of ``image_size``, with any knob overridden; validated."""
    if name not in PRESETS:
        raise InvalidInputError(f"Unknown preset '{name}'; use one of {', '.join(PRESETS)}.")
    cfg = PRESETS[name](max(image_size))
    unknown = set(overrides) - set(KNOBS)
    if unknown:
        raise InvalidInputError(f"Unknown knob(s) {', '.join(sorted(unknown))}; known: {', '.join(KNOBS)}.")
    t = overrides.pop("transforms", None)
    if isinstance(t, dict):
        values: dict[str, Any] = {k: tuple(v) if k == "scales" else v for k, v in t.items()}
        t = replace(cfg.transforms, **values)
    cfg = replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    if t is not None:
        cfg = replace(cfg, transforms=t)
    return cfg.validate(image_size)
