"""The optimisation loop, and nothing else: no display, no saving, no hooks left behind."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from server.engine.hooks import capture, first_tensor
from server.engine.inference import to_model_input
from server.engine.optvis.objectives import LOGITS, Objective
from server.engine.optvis.param import FFTParam, ImageParam, fft_image, pixel_image
from server.engine.optvis.presets import RenderConfig
from server.engine.optvis.transforms import gaussian_blur, random_affine
from server.errors import InvalidInputError

StepCallback = Callable[[int, float, torch.Tensor], None]


def layer_outputs(model: nn.Module, x: torch.Tensor, layers: Iterable[str]) -> dict[str, torch.Tensor]:
    """The outputs of ``layers`` (and the model's under LOGITS) with their graph, stopping as early as possible."""
    wanted = set(layers)
    need_logits = LOGITS in wanted
    names = sorted(wanted - {LOGITS})
    with capture(model, names, keep_graph=True, stop_after=not need_logits, strict=True) as outputs:
        result = outputs.run(x)
    out = dict(outputs)
    if need_logits:
        logits = first_tensor(result)
        if logits is None:
            raise InvalidInputError("The model returned no tensor to take a class score from.")
        out[LOGITS] = logits
    return out


@dataclass(frozen=True)
class BatchRenderResult:
    """One image per objective of a :func:`render_batch`, optimised together."""

    images: np.ndarray  # (B, H, W, C) float32 in [0, 1]
    start_values: list[float]  # each image's objective on its starting noise (untransformed)
    final_values: list[float]  # each image's objective on its final image (untransformed)
    config: RenderConfig


@dataclass(frozen=True)
class RenderResult:
    image: np.ndarray  # (H, W, C) float32 in [0, 1]
    values: list[float]  # the objective at every step (on the transformed image)
    start_value: float  # the objective on the starting noise (untransformed)
    final_value: float  # the objective on the final image (untransformed)
    config: RenderConfig


def to_numpy_image(img: torch.Tensor) -> np.ndarray:
    return img.detach()[0].float().cpu().permute(1, 2, 0).numpy().copy()


def make_param(
    cfg: RenderConfig,
    shape: tuple[int, int, int],
    neutral: tuple[float, ...],
    gen: torch.Generator,
    batch: int = 1,
) -> ImageParam:
    if cfg.param == "fft":
        return fft_image(shape, cfg.init_sd, cfg.decay_power, cfg.decorrelate, gen, batch)
    return pixel_image(shape, neutral, cfg.init_sd, gen, batch)


def _percentile_mask(score: torch.Tensor, pct: float) -> torch.Tensor:
    """True where ``score`` (N, H, W) is in the lowest ``pct`` percent of its own image."""
    threshold = torch.quantile(score.reshape(score.shape[0], -1), pct / 100.0, dim=1)
    return score <= threshold[:, None, None]


@torch.no_grad()
def apply_pixel_regularisers(param: ImageParam, cfg: RenderConfig, step: int) -> None:
    """Yosinski et al.'s regularisers on the raw pixels, then clamp to the valid range."""
    x = param.pixels
    if x is None:
        return
    neutral = param.neutral.to(x)
    if cfg.l2_decay:
        x.sub_(neutral).mul_(1.0 - cfg.l2_decay).add_(neutral)
    if cfg.blur_every and (step + 1) % cfg.blur_every == 0:
        x.copy_(gaussian_blur(x, cfg.blur_sigma))
    if cfg.clip_norm_pct:
        dev = x - neutral  # squared norm ranks pixels like the norm, without a slow strided reduction
        weak = _percentile_mask((dev * dev).sum(dim=1), cfg.clip_norm_pct)
        x.copy_(torch.where(weak[:, None], neutral.expand_as(x), x))
    if cfg.clip_contrib_pct and x.grad is not None:
        contrib = ((x - neutral) * -x.grad).sum(dim=1).abs()
        weak = _percentile_mask(contrib, cfg.clip_contrib_pct)
        x.copy_(torch.where(weak[:, None], neutral.expand_as(x), x))
    x.clamp_(0.0, 1.0)


def prepared_param(
    cfg: RenderConfig,
    input_size: tuple[int, int, int],
    mean: tuple[float, ...],
    device: torch.device | str,
    gen: torch.Generator,
    batch: int = 1,
) -> ImageParam:
    """The ``batch`` starting images of a render with ``cfg``, drawn from ``gen``, their tensors on ``device``."""
    param = make_param(cfg, input_size, mean, gen, batch)
    for t in param.tensors:
        t.data = t.data.to(device)
    param.neutral = param.neutral.to(device)
    if isinstance(param, FFTParam):
        param.scale = param.scale.to(device)
    return param


def objective_evaluator(
    model: nn.Module,
    objective: Objective,
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device | str,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """images (N, C, H, W) in [0, 1] -> the objective of each (an (N,) tensor, with its graph)."""
    c = len(mean)
    mean_t = torch.tensor(mean, dtype=torch.float32, device=device).reshape(1, c, 1, 1)
    std_t = torch.tensor(std, dtype=torch.float32, device=device).reshape(1, c, 1, 1)

    def evaluate(img: torch.Tensor) -> torch.Tensor:
        x = to_model_input((img - mean_t) / std_t, model, torch.device(device))
        return objective(layer_outputs(model, x, objective.layers)).reshape(img.shape[0])

    return evaluate


def start_objective(
    model: nn.Module,
    objective: Objective,
    cfg: RenderConfig,
    *,
    input_size: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device | str = "cpu",
) -> float:
    """The objective on the starting noise of a render with ``cfg`` (seeded by ``cfg.seed``), untransformed:
    what :func:`render` reports as ``start_value``. Over several seeds it gives the noise level of the
    objective before any optimisation."""
    cfg.validate(tuple(input_size[1:]))  # type: ignore[arg-type]
    param = prepared_param(cfg, input_size, mean, device, torch.Generator().manual_seed(cfg.seed))
    with torch.no_grad():
        return float(objective_evaluator(model, objective, mean, std, device)(param.image()).mean())


def _optimise(
    model: nn.Module,
    objective: Objective,
    cfg: RenderConfig,
    batch: int,
    input_size: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device | str,
    on_step: StepCallback | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[float]]:
    """The loop of :func:`render` and :func:`render_batch`: (final images, start values, final values, the
    batch's mean objective at every step). Images of a batch share the random transform of each step."""
    _, h, w = input_size
    cfg.validate((h, w))
    gen = torch.Generator().manual_seed(cfg.seed)
    param = prepared_param(cfg, input_size, mean, device, gen, batch)
    evaluate = objective_evaluator(model, objective, mean, std, device)

    with torch.no_grad():
        start = evaluate(param.image()).detach()
    opt = torch.optim.Adam(param.tensors, lr=cfg.lr)
    values: list[float] = []
    for step in range(cfg.steps):
        opt.zero_grad(set_to_none=True)
        with torch.enable_grad():
            img = param.image()
            value = evaluate(random_affine(img, cfg.transforms, gen))
            (-value.sum()).backward()  # images are independent: each gets its own objective's gradient
        opt.step()
        apply_pixel_regularisers(param, cfg, step)
        values.append(float(value.detach().mean()))
        if on_step is not None:
            on_step(step, values[-1], img.detach())
    with torch.no_grad():
        final = param.image().detach()
        final_values = evaluate(final).detach()
    return final, start, final_values, values


def render(
    model: nn.Module,
    objective: Objective,
    cfg: RenderConfig,
    *,
    input_size: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device | str = "cpu",
    on_step: StepCallback | None = None,
) -> RenderResult:
    """Maximise ``objective`` over an image for ``cfg.steps`` steps; seeded by ``cfg.seed``.

    ``on_step(step, value, image)`` runs after every step (a job reports progress and frames there,
    and cancels by raising). Hold the model's lock around this call when the model is shared.
    """
    final, start, final_values, values = _optimise(
        model, objective, cfg, 1, input_size, mean, std, device, on_step
    )
    return RenderResult(to_numpy_image(final), values, float(start[0]), float(final_values[0]), cfg)


def render_batch(
    model: nn.Module,
    objective: Objective,
    batch: int,
    cfg: RenderConfig,
    *,
    input_size: tuple[int, int, int],
    mean: tuple[float, ...],
    std: tuple[float, ...],
    device: torch.device | str = "cpu",
    on_step: StepCallback | None = None,
) -> BatchRenderResult:
    """``batch`` images optimised in one batch, image i for element i of ``objective`` (e.g.
    :func:`~server.engine.optvis.objectives.channels`, one filter per image): one forward and backward per
    step for all of them. Every image starts from its own noise; each step's transform is shared."""
    if batch < 1:
        raise InvalidInputError(f"batch must be at least 1, got {batch}.")
    final, start, final_values, _ = _optimise(
        model, objective, cfg, batch, input_size, mean, std, device, on_step
    )
    images = final.float().cpu().permute(0, 2, 3, 1).numpy().copy()
    return BatchRenderResult(images, start.float().tolist(), final_values.float().tolist(), cfg)
