"""The DeepVis toolbox's top-9: the dataset images that excite a filter most, each with its
deconvolution map and both cropped to the map's support, stored as artifacts. No web imports."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.artifacts import ArtifactStore, content_key
from server.datasets.store import DatasetStore
from server.deepvis import check_target
from server.engine.attribution import Target, backprop_map
from server.engine.features import image_batches
from server.engine.imaging import png_bytes, signed_map_to_rgb
from server.engine.top_images import strongest_images, support_box
from server.jobs import JobPlan, Progress, no_progress
from server.zoo.manager import LoadedModel, ZooManager

TOP_IMAGES_TASK = "top_images"


def top_images_key(lm: LoadedModel, dataset_hash: str, layer: str, channel: int, k: int) -> str:
    return content_key("top_images", lm.cache_key, dataset_hash, layer, str(channel), str(k))


class TopImagesService:
    """Scan a data directory's datasets for the images that excite a filter of a zoo model most."""

    def __init__(self, zoo: ZooManager, datasets: DatasetStore, artifacts: ArtifactStore) -> None:
        self.zoo = zoo
        self.datasets = datasets
        self.artifacts = artifacts

    def plan(self, model_id: str, untrained: bool, request: dict[str, Any]) -> JobPlan:
        """``request`` names the dataset, layer, channel and k; a 4xx for any of them before the job."""
        lm = self.zoo.load(model_id, untrained)
        check_target(lm, {"layer": request["layer"], "channel": request["channel"]})
        info = self.datasets.get(request["dataset"])  # 404 with suggestions for an unknown dataset
        params = {**request, "model": model_id, "untrained": untrained}
        key = top_images_key(lm, info.content_hash, request["layer"], request["channel"], request["k"])
        return JobPlan(
            TOP_IMAGES_TASK, params, key, {**lm.describe(), "dataset": info.id, "num_images": info.num_images}
        )

    def run(self, params: dict[str, Any], progress: Progress = no_progress) -> dict[str, Any]:
        """The ``k`` images that excite ``layer``:``channel`` most, with their crops and deconvolutions.
        ``progress(fraction, message)`` may raise to stop."""
        lm = self.zoo.load(params["model"], bool(params.get("untrained", False)))
        layer, channel, k = params["layer"], int(params["channel"]), int(params.get("k", 9))
        check_target(lm, {"layer": layer, "channel": channel})
        info = self.datasets.get(params["dataset"])
        total = info.num_images
        key = top_images_key(lm, info.content_hash, layer, channel, k)

        def on_batch(done: int, _total: int | None) -> None:
            progress(0.9 * done / max(total, 1), f"scanned {done}/{total} images")

        images = (img for _rec, img in self.datasets.iter_images(info.id))
        with lm.lock:
            strong = strongest_images(
                lm.model,
                layer,
                channel,
                image_batches(images, lm.prep, 64),
                k,
                progress=on_batch,
                total=total,
            )
        out = []
        for rank, s in enumerate(strong):
            x, cropped = lm.preprocess(self.datasets.load_image(info.id, s.index))
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
                item[field_name] = self.artifacts.put(
                    key, f"{rank}_{stem}.png", png_bytes(np.ascontiguousarray(arr), upscale_to=96)
                )
            out.append(item)
            progress(0.9 + 0.1 * (rank + 1) / len(strong), f"deconvolution {rank + 1}/{len(strong)}")
        return {**lm.describe(), "dataset": info.id, "layer": layer, "channel": channel, "images": out}
