"""DeepVis: activation maximisation for a filter, a neuron or a class, with intermediate images.

:class:`DeepVisService` validates a target and every knob before a job starts, keys the render by
its content (same model, target and knobs, seed included -> same image), and renders it, storing
the intermediate and final images as artifacts. No web imports.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from server.artifacts import ArtifactStore, content_key
from server.engine.imaging import npy_bytes, png_bytes
from server.engine.optvis import Objective, RenderConfig, channel, class_logit, neuron, preset_config, render
from server.errors import InvalidInputError, NotFoundError
from server.jobs import JobPlan
from server.zoo.manager import LoadedModel, ZooManager

DEEPVIS_TASK = "deepvis"
FrameSink = Callable[[float, str, dict[str, Any] | None], None]  # (progress, message, frame); may raise


def check_target(lm: LoadedModel, target: dict[str, Any]) -> None:
    """Refuse an unknown layer or an out-of-range channel, neuron or class before any work starts."""
    if target.get("class_index") is not None:
        n = lm.card.num_classes
        if not 0 <= target["class_index"] < n:
            raise InvalidInputError(
                f"class_index {target['class_index']} is out of range for '{lm.id}' with {n} classes (0..{n - 1})."
            )
        return
    layer = target.get("layer")
    if not layer:
        raise InvalidInputError("Give a layer with a channel or a neuron, or a class_index.")
    try:
        info = lm.layer(layer)
    except NotFoundError as exc:  # a bad parameter of this request: 422, with the suggestions kept
        raise InvalidInputError(exc.message) from None
    if not info.output_shape:
        raise InvalidInputError(f"Layer '{layer}' is not called in the model's forward pass.")
    if target.get("channel") is not None:
        n = info.output_shape[0]
        if not 0 <= target["channel"] < n:
            raise InvalidInputError(
                f"Channel {target['channel']} is out of range for layer '{layer}' with {n} channels (0..{n - 1})."
            )
    elif target.get("neuron") is not None:
        n = math.prod(info.output_shape)
        if not 0 <= target["neuron"] < n:
            raise InvalidInputError(
                f"Neuron {target['neuron']} is out of range for layer '{layer}' with {n} units (0..{n - 1})."
            )
    else:
        raise InvalidInputError("A layer target needs a channel or a neuron.")


def objective_for(target: dict[str, Any]) -> Objective:
    if target.get("class_index") is not None:
        return class_logit(int(target["class_index"]))
    if target.get("channel") is not None:
        return channel(target["layer"], int(target["channel"]))
    return neuron(target["layer"], int(target["neuron"]))


def config_for(lm: LoadedModel, preset: str, knobs: dict[str, Any]) -> RenderConfig:
    return preset_config(preset, tuple(lm.card.input_size[1:]), **knobs)


def deepvis_key(lm: LoadedModel, target: dict[str, Any], preset: str, cfg: RenderConfig) -> str:
    """Content key of a render: same model, target and every knob (seed included) -> same image."""
    target_str = repr(sorted((k, v) for k, v in target.items() if v is not None))
    return content_key("deepvis", lm.cache_key, target_str, preset, repr(sorted(cfg.to_dict().items())))


def image_png(img: np.ndarray) -> bytes:
    """(H, W, C) floats in [0, 1] -> PNG bytes, grayscale shown as RGB, tiny images upscaled."""
    arr = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return png_bytes(arr, upscale_to=224)


def class_probability(lm: LoadedModel, img: np.ndarray, class_index: int) -> float:
    x = torch.from_numpy(img).permute(2, 0, 1)[None]
    mean = torch.tensor(lm.card.mean).reshape(1, -1, 1, 1)
    std = torch.tensor(lm.card.std).reshape(1, -1, 1, 1)
    with torch.inference_mode():
        logits = lm.model(lm.to_input((x - mean) / std))
    return float(torch.softmax(logits.reshape(1, -1).float(), dim=1)[0, class_index])


class DeepVisService:
    """Plan and render DeepVis images of the zoo's models; images are stored as artifacts."""

    def __init__(self, zoo: ZooManager, artifacts: ArtifactStore) -> None:
        self.zoo = zoo
        self.artifacts = artifacts

    def plan(
        self, model_id: str, untrained: bool, target: dict[str, Any], preset: str, knobs: dict[str, Any]
    ) -> JobPlan:
        """Validate the target and every knob (422 on nonsense); the job that renders them."""
        lm = self.zoo.load(model_id, untrained)
        check_target(lm, target)
        cfg = config_for(lm, preset, knobs)
        params = {
            "model": model_id,
            "untrained": untrained,
            "target": target,
            "preset": preset,
            "knobs": knobs,
        }
        details = {**lm.describe(), "config": cfg.to_dict()}
        return JobPlan(DEEPVIS_TASK, params, deepvis_key(lm, target, preset, cfg), details)

    def render(self, params: dict[str, Any], sink: FrameSink | None = None) -> dict[str, Any]:
        """Render one DeepVis image; ``sink(progress, message, frame)`` sees every step and may raise to stop."""
        lm = self.zoo.load(params["model"], bool(params.get("untrained", False)))
        target = dict(params["target"])
        check_target(lm, target)
        preset = params.get("preset", "deepvis")
        cfg = config_for(lm, preset, dict(params.get("knobs", {})))
        key = deepvis_key(lm, target, preset, cfg)
        store = self.artifacts
        card = lm.card

        def on_step(step: int, value: float, image: torch.Tensor) -> None:
            if sink is None:
                return
            done = step + 1
            frame = None
            if done % cfg.frame_every == 0 or done == cfg.steps:
                name = f"step_{done:05d}.png"
                url = store.put(key, name, image_png(image[0].permute(1, 2, 0).float().cpu().numpy()))
                frame = {"step": done, "value": value, "image_url": url}
            sink(done / cfg.steps, f"step {done}/{cfg.steps}: objective {value:.4g}", frame)

        with lm.lock:
            result = render(
                lm.model,
                objective_for(target),
                cfg,
                input_size=card.input_size,
                mean=card.mean,
                std=card.std,
                device=lm.device,
                on_step=on_step,
            )
        out: dict[str, Any] = {
            **lm.describe(),
            "target": target,
            "preset": preset,
            "config": cfg.to_dict(),
            "image_url": store.put(key, "image.png", image_png(result.image)),
            "npy_url": store.put(key, "image.npy", npy_bytes(result.image)),
            "start_value": result.start_value,
            "final_value": result.final_value,
            "values": result.values,
        }
        if target.get("class_index") is not None:
            with lm.lock:
                out["class_probability"] = class_probability(lm, result.image, int(target["class_index"]))
            labels = card.labels
            out["class_label"] = (
                labels[target["class_index"]] if target["class_index"] < len(labels) else None
            )
        return out
