"""The DeepVis toolbox's top-9: the dataset images that excite a filter most, each with its
deconvolution map and both cropped to the map's support, stored as artifacts; or for every filter of a
layer at once (the static microscope). No web imports."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import torch

from server.artifacts import ArtifactStore, content_key
from server.datasets.store import DatasetInfo, DatasetStore
from server.deepvis import check_target
from server.engine.attribution import filter_maps
from server.engine.features import image_batches
from server.engine.imaging import png_bytes, signed_map_to_rgb
from server.engine.top_images import StrongImage, strongest_images, strongest_per_channel, support_box
from server.features_cache import FeatureCache
from server.jobs import JobPlan, Progress, no_progress
from server.zoo.manager import LoadedModel, ZooManager

TOP_IMAGES_TASK = "top_images"


def top_images_key(lm: LoadedModel, dataset_hash: str, layer: str, channel: int, k: int) -> str:
    return content_key("top_images", lm.cache_key, dataset_hash, layer, str(channel), str(k))


class TopImagesService:
    """Scan a data directory's datasets for the images that excite a filter of a zoo model most."""

    def __init__(
        self,
        zoo: ZooManager,
        datasets: DatasetStore,
        artifacts: ArtifactStore,
        features: FeatureCache,
    ) -> None:
        self.zoo = zoo
        self.datasets = datasets
        self.artifacts = artifacts
        self.features = features  # the per-channel peaks of a whole layer (layer_top_images)

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
        progress(0.9, f"deconvolution of {len(strong)} images")
        out = [
            self._stored(key, "", item) for item in self.pictures(lm, info, layer, {channel: strong})[channel]
        ]
        progress(1.0, "done")
        return {**lm.describe(), "dataset": info.id, "layer": layer, "channel": channel, "images": out}

    def layer_top_images(
        self, lm: LoadedModel, dataset_id: str, layer: str, channels: list[int], k: int = 9
    ) -> dict[int, list[dict[str, Any]]]:
        """The top ``k`` of every one of ``channels`` (items as :meth:`run` gives them, images as artifacts) from
        one features pass over the dataset (the feature cache's per-channel peaks) and batched deconvolutions;
        kept by content, so a second call with the same model, dataset, layer and channels reads it back."""
        info = self.datasets.get(dataset_id)
        key = content_key(
            "layer_top_images", lm.cache_key, info.content_hash, layer, repr(list(channels)), str(k)
        )
        if self.artifacts.exists(key, "items.json"):
            kept = json.loads(self.artifacts.path(key, "items.json").read_text())
            if self.artifacts.alive(kept):
                return {int(c): items for c, items in kept.items()}
        peaks = self.features.features(lm, layer, info.id, pool="max").features
        strong = strongest_per_channel(peaks, channels, k, layer)
        out = {
            c: [self._stored(key, f"{c}_", item) for item in items]
            for c, items in self.pictures(lm, info, layer, strong).items()
        }
        self.artifacts.put(key, "items.json", json.dumps(out).encode())
        return out

    def _stored(self, key: str, prefix: str, item: dict[str, Any]) -> dict[str, Any]:
        """``item`` with its pictures stored as PNG artifacts under ``key``, their URLs in ``<picture>_url``."""
        pictures = item.pop("pictures")
        for stem, arr in pictures.items():
            name = f"{prefix}{item['rank']}_{stem}.png"
            item[f"{stem}_url"] = self.artifacts.put(key, name, picture_png(arr))
        return item

    def pictures(
        self,
        lm: LoadedModel,
        info: DatasetInfo,
        layer: str,
        strong: dict[int, list[StrongImage]],
        batch: int = 64,
    ) -> dict[int, list[dict[str, Any]]]:
        """Each strong image of each channel with its deconvolution at the filter's strongest position and both
        cropped to the map's support, as arrays under ``pictures`` (image, crop, deconv, deconv_crop); the
        deconvolutions run ``batch`` images at a time."""
        picks = [(channel, rank, s) for channel, items in strong.items() for rank, s in enumerate(items)]
        picks.sort(key=lambda p: p[2].index)  # the rows of an image strong for many filters come together
        out: dict[int, list[dict[str, Any]]] = {channel: [] for channel in strong}
        for start in range(0, len(picks), batch):
            chunk = picks[start : start + batch]
            loaded = {
                i: lm.preprocess(self.datasets.load_image(info.id, i)) for i in {s.index for _, _, s in chunk}
            }
            prepared = [loaded[s.index] for _, _, s in chunk]
            inputs = torch.cat([x for x, _ in prepared])
            with lm.lock:
                maps = filter_maps(lm.model, inputs, layer, [c for c, _, _ in chunk], "deconvnet")
            for (channel, rank, s), (_x, cropped), attr in zip(chunk, prepared, maps, strict=True):
                top, left, bottom, right = support_box(attr.map)
                rgb = np.asarray(cropped.convert("RGB"))
                deconv = signed_map_to_rgb(attr.map)
                out[channel].append(
                    {
                        "rank": rank,
                        "index": s.index,
                        "label": info.records[s.index].label,
                        "value": s.value,
                        "position": list(attr.position) if attr.position is not None else None,
                        "box": [top, left, bottom, right],
                        "pictures": {
                            "image": rgb,
                            "crop": rgb[top:bottom, left:right],
                            "deconv": deconv,
                            "deconv_crop": deconv[top:bottom, left:right],
                        },
                    }
                )
        for items in out.values():
            items.sort(key=lambda item: item["rank"])
        return out


def picture_png(arr: np.ndarray) -> bytes:
    """A top image, its crop or a deconvolution as PNG, small ones upscaled to be seen."""
    return png_bytes(np.ascontiguousarray(arr), upscale_to=96)
