"""DeepVis jobs: activation maximisation for a filter, a neuron or a class, with progress, intermediate
images (stored as artifacts, linked from the job's frame), cancel within one step and cached results."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from server.artifacts import ArtifactStore, content_key
from server.config import Settings
from server.engine.imaging import npy_bytes, png_bytes
from server.engine.optvis import Objective, RenderConfig, channel, class_logit, neuron, preset_config, render
from server.errors import InvalidInputError, NotFoundError
from server.jobs import JobContext, task
from server.tasks.context import settings_for, zoo_for
from server.zoo.manager import LoadedModel, ZooManager

DEEPVIS_TASK = "deepvis"
FrameSink = Any  # callable(progress, message, frame | None)


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


def model_key(lm: LoadedModel) -> str:
    return f"{lm.id}:{'untrained' if lm.untrained else lm.weights_source}"


def deepvis_key(lm: LoadedModel, target: dict[str, Any], preset: str, cfg: RenderConfig) -> str:
    """Content key of a render: same model, target and every knob (seed included) -> same image."""
    target_str = repr(sorted((k, v) for k, v in target.items() if v is not None))
    return content_key("deepvis", model_key(lm), target_str, preset, repr(sorted(cfg.to_dict().items())))


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


def run_deepvis(
    params: dict[str, Any], settings: Settings, zoo: ZooManager, sink: FrameSink | None = None
) -> dict:
    """Render one DeepVis image; ``sink(progress, message, frame)`` sees every step and may raise to stop."""
    lm = zoo.load(params["model"], bool(params.get("untrained", False)))
    target = dict(params["target"])
    check_target(lm, target)
    preset = params.get("preset", "deepvis")
    cfg = config_for(lm, preset, dict(params.get("knobs", {})))
    key = deepvis_key(lm, target, preset, cfg)
    store = ArtifactStore(settings.cache_dir / "artifacts")
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
        out["class_label"] = labels[target["class_index"]] if target["class_index"] < len(labels) else None
    return out


@task(DEEPVIS_TASK)
def deepvis_task(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    settings = settings_for(params)

    def sink(progress: float, message: str, frame: dict | None) -> None:
        ctx.report(progress, message, frame=frame, force=frame is not None)  # raises JobCancelled

    return run_deepvis(params, settings, zoo_for(settings), sink)


# --- top-9: the dataset images that excite a filter most, with their deconvolution crops ------------------

TOP_IMAGES_TASK = "top_images"


def top_images_key(lm: LoadedModel, dataset_hash: str, layer: str, channel: int, k: int) -> str:
    return content_key("top_images", model_key(lm), dataset_hash, layer, str(channel), str(k))


def run_top_images(
    params: dict[str, Any], settings: Settings, zoo: ZooManager, progress: Any | None = None
) -> dict[str, Any]:
    """Scan a dataset for the ``k`` images that excite ``layer``:``channel`` most; store each image, its
    deconvnet map and both cropped to the map's support. ``progress(fraction, message)`` may raise to stop."""
    from server.datasets.store import DatasetStore
    from server.engine.attribution import Target, backprop_map
    from server.engine.features import image_batches
    from server.engine.imaging import signed_map_to_rgb
    from server.engine.top_images import strongest_images, support_box

    lm = zoo.load(params["model"], bool(params.get("untrained", False)))
    layer, channel, k = params["layer"], int(params["channel"]), int(params.get("k", 9))
    check_target(lm, {"layer": layer, "channel": channel})
    datasets = DatasetStore.from_settings(settings)
    info = datasets.get(params["dataset"])
    total = info.num_images
    key = top_images_key(lm, info.content_hash, layer, channel, k)
    store = ArtifactStore(settings.cache_dir / "artifacts")

    def on_batch(done: int, _total: int | None) -> None:
        if progress is not None:
            progress(0.9 * done / max(total, 1), f"scanned {done}/{total} images")

    images = (img for _rec, img in datasets.iter_images(info.id))
    with lm.lock:
        strong = strongest_images(
            lm.model, layer, channel, image_batches(images, lm.prep, 64), k, progress=on_batch, total=total
        )
    out = []
    for rank, s in enumerate(strong):
        x, cropped = lm.preprocess(datasets.load_image(info.id, s.index))
        with lm.lock:
            attr = backprop_map(
                lm.model, x, Target(layer=layer, channel=channel, position="max"), "deconvnet"
            )
        top, left, bottom, right = support_box(attr.map)
        rgb = np.asarray(cropped.convert("RGB"))
        deconv = signed_map_to_rgb(attr.map)
        names = {
            "image_url": ("image", rgb),
            "crop_url": ("crop", rgb[top:bottom, left:right]),
            "deconv_url": ("deconv", deconv),
            "deconv_crop_url": ("deconv_crop", deconv[top:bottom, left:right]),
        }
        item: dict[str, Any] = {
            "rank": rank,
            "index": s.index,
            "label": info.records[s.index].label,
            "value": s.value,
            "position": list(attr.position) if attr.position is not None else None,
            "box": [top, left, bottom, right],
        }
        for field_name, (stem, arr) in names.items():
            item[field_name] = store.put(
                key, f"{rank}_{stem}.png", png_bytes(np.ascontiguousarray(arr), upscale_to=96)
            )
        out.append(item)
        if progress is not None:
            progress(0.9 + 0.1 * (rank + 1) / len(strong), f"deconvolution {rank + 1}/{len(strong)}")
    return {**lm.describe(), "dataset": info.id, "layer": layer, "channel": channel, "images": out}


@task(TOP_IMAGES_TASK)
def top_images_task(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    settings = settings_for(params)
    return run_top_images(params, settings, zoo_for(settings), lambda f, m: ctx.report(f, m))
