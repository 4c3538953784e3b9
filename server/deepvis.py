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
import torch.nn.functional as F

from server.artifacts import ArtifactStore, content_key
from server.engine.imaging import npy_bytes, png_bytes
from server.engine.optvis import (
    Objective,
    RenderConfig,
    channel,
    channels,
    class_logit,
    neuron,
    preset_config,
    render,
    render_batch,
)
from server.engine.optvis.verdict import verdict
from server.errors import InvalidInputError, NotFoundError
from server.jobs import JobPlan
from server.zoo.manager import LoadedModel, ZooManager

DEEPVIS_TASK = "deepvis"
LITE_MODELS = ("efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2")
FrameSink = Callable[[float, str, dict[str, Any] | None], None]  # (progress, message, frame); may raise


def check_target(lm: LoadedModel, target: dict[str, Any]) -> None:
    """Refuse an unknown layer or an out-of-range channel, neuron or class before any work starts (and a
    model that takes no image: DeepVis and the top images are about input images)."""
    lm.require_image_input()
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
    info = lm.layer(layer)  # an unknown layer: 404 naming the closest ones, as everywhere
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


def deepvis_key(
    lm: LoadedModel, target: dict[str, Any], preset: str, cfg: RenderConfig, second_opinion: str | None = None
) -> str:
    """Content key of a render: same model, target and every knob (seed included) -> same image; the
    second-opinion model is part of the result, so of the key."""
    target_str = repr(sorted((k, v) for k, v in target.items() if v is not None))
    knobs = repr(sorted(cfg.to_dict().items()))
    return content_key("deepvis", lm.cache_key, target_str, preset, knobs, repr(second_opinion))


def image_png(img: np.ndarray) -> bytes:
    """(H, W, C) floats in [0, 1] -> PNG bytes, grayscale shown as RGB, tiny images upscaled."""
    arr = np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return png_bytes(arr, upscale_to=224)


def class_probabilities(lm: LoadedModel, img: np.ndarray) -> np.ndarray:
    """Softmax of ``lm`` on an (H, W, C) image in [0, 1], resized (antialiased bilinear) to its input size."""
    x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float()
    size = tuple(lm.card.input_size[1:])
    if tuple(x.shape[2:]) != size:
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)
    mean = torch.tensor(lm.card.mean).reshape(1, -1, 1, 1)
    std = torch.tensor(lm.card.std).reshape(1, -1, 1, 1)
    with torch.inference_mode():
        logits = lm.model(lm.to_input((x - mean) / std))
    return torch.softmax(logits.reshape(1, -1).float(), dim=1)[0].cpu().numpy()


def class_probability(lm: LoadedModel, img: np.ndarray, class_index: int) -> float:
    return float(class_probabilities(lm, img)[class_index])


def second_opinion_id(zoo: ZooManager, setting: str, rendered: LoadedModel) -> str | None:
    """The model that judges a class image of ``rendered``: the setting's id, or with ``auto`` the first
    Lite model other than the rendered one; None when off (``none``) or when no model with the same classes
    is there (the digits model has none)."""
    if setting == "none":
        return None
    candidates = [m for m in LITE_MODELS if m != rendered.id] if setting == "auto" else [setting]
    for model_id in candidates:
        try:
            card = zoo.card(model_id)
        except NotFoundError:
            continue
        same_classes = card.num_classes == rendered.card.num_classes and card.labels == rendered.card.labels
        if same_classes and card.labels and zoo.spec(model_id).peek().status == "available":
            return model_id
    return None


class DeepVisService:
    """Plan and render DeepVis images of the zoo's models; images are stored as artifacts."""

    def __init__(self, zoo: ZooManager, artifacts: ArtifactStore, second_opinion: str = "auto") -> None:
        self.zoo = zoo
        self.artifacts = artifacts
        self.second_opinion = second_opinion  # Settings.deepvis_second_opinion

    def second_opinion_for(self, lm: LoadedModel, target: dict[str, Any]) -> str | None:
        if target.get("class_index") is None:
            return None
        return second_opinion_id(self.zoo, self.second_opinion, lm)

    def judge(self, lm: LoadedModel, img: np.ndarray, class_index: int, other_id: str) -> dict[str, Any]:
        """The second opinion on a class image: the other model's top 5 (with labels) and the verdict."""
        own = class_probability(lm, img, class_index)
        other = self.zoo.load(other_id)
        v = verdict(class_index, own, class_probabilities(other, img)).to_dict()
        labels = other.card.labels
        for row in v["other_top"]:  # type: ignore[attr-defined]
            row["label"] = labels[row["index"]] if row["index"] < len(labels) else None
        return {"model": other_id, **v}

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
        key = deepvis_key(lm, target, preset, cfg, self.second_opinion_for(lm, target))
        return JobPlan(DEEPVIS_TASK, params, key, details)

    def render_filters(
        self,
        lm: LoadedModel,
        layer: str,
        filters: list[int],
        preset: str = "deepvis",
        knobs: dict[str, Any] | None = None,
        batch: int = 64,
    ) -> np.ndarray:
        """One DeepVis image per filter of ``layer`` ((N, H, W, C) in [0, 1]), ``batch`` filters optimised
        together (one forward and backward per step for all of them); kept as an artifact by content, so a
        second call with the same model, filters and knobs reads it back."""
        if not filters:
            raise InvalidInputError("Give at least one filter to render.")
        if batch < 1:
            raise InvalidInputError(f"batch must be at least 1, got {batch}.")
        for f in filters:
            check_target(lm, {"layer": layer, "channel": f})
        cfg = config_for(lm, preset, dict(knobs or {}))
        knob_str = repr(sorted(cfg.to_dict().items()))
        key = content_key(
            "deepvis-filters", lm.cache_key, layer, repr(list(filters)), preset, knob_str, str(batch)
        )
        if self.artifacts.exists(key, "images.npy"):
            return np.load(self.artifacts.path(key, "images.npy"), allow_pickle=False)
        card = lm.card
        parts = []
        for start in range(0, len(filters), batch):
            chunk = list(filters[start : start + batch])
            result = render_batch(  # no model lock, as in render(): this thread's hooks only
                lm.model,
                channels(layer, chunk),
                len(chunk),
                cfg,
                input_size=card.input_size,
                mean=card.mean,
                std=card.std,
                device=lm.device,
            )
            parts.append(result.images)
        images = np.concatenate(parts)
        self.artifacts.put(key, "images.npy", npy_bytes(images))
        return images

    def render(self, params: dict[str, Any], sink: FrameSink | None = None) -> dict[str, Any]:
        """Render one DeepVis image; ``sink(progress, message, frame)`` sees every step and may raise to stop."""
        lm = self.zoo.load(params["model"], bool(params.get("untrained", False)))
        target = dict(params["target"])
        check_target(lm, target)
        preset = params.get("preset", "deepvis")
        cfg = config_for(lm, preset, dict(params.get("knobs", {})))
        other_id = self.second_opinion_for(lm, target)
        key = deepvis_key(lm, target, preset, cfg, other_id)
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

        # no model lock: render() changes no module state; its hooks are this thread's
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
            index = int(target["class_index"])
            out["class_probability"] = class_probability(lm, result.image, index)
            out["class_label"] = card.labels[index] if index < len(card.labels) else None
            if sink is not None:
                sink(1.0, f"second opinion from {other_id}" if other_id else "done", None)
            out["second_opinion"] = self.judge(lm, result.image, index, other_id) if other_id else None
            out["verdict"] = out["second_opinion"]["verdict"] if other_id else None
        return out
