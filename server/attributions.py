"""Attribution maps for one uploaded image: deconvnet, guided backprop, gradient and Grad-CAM.

Application logic over server.engine.attribution: target resolution, artifacts (PNG + .npy)
and a content-keyed cache of responses. No web imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from server.artifacts import content_key
from server.engine.attribution import METHODS, Attribution, Target, attribute, backprop_top_filters
from server.engine.imaging import (
    colorize,
    normalize_maps,
    npy_bytes,
    png_bytes,
    signed_map_to_rgb,
)
from server.errors import InvalidInputError
from server.uploads import UploadService
from server.zoo.manager import LoadedModel

MAX_TOP_K = 64


@dataclass(frozen=True)
class AttributionRequest:
    method: str
    layer: str | None = None
    channel: int | None = None
    neuron: int | None = None
    class_index: int | None = None
    position: str = "max"
    top_k: int | None = None

    def validate(self, lm: LoadedModel) -> None:
        """Every check that needs only the model card and the layer tree (422 on failure)."""
        if self.method not in METHODS:
            raise InvalidInputError(f"Unknown method '{self.method}'; use one of {', '.join(METHODS)}.")
        if self.position not in ("max", "all"):
            raise InvalidInputError(f"Unknown position '{self.position}'; use 'max' or 'all'.")
        if self.top_k is not None and not 1 <= self.top_k <= MAX_TOP_K:
            raise InvalidInputError(f"top_k must be between 1 and {MAX_TOP_K}, got {self.top_k}.")
        if self.channel is not None and self.neuron is not None:
            raise InvalidInputError("Give a channel or a neuron, not both.")
        if self.class_index is not None and not 0 <= self.class_index < lm.card.num_classes:
            n = lm.card.num_classes
            raise InvalidInputError(
                f"class_index {self.class_index} is out of range for {n} classes (0..{n - 1})."
            )
        needs_layer = self.method == "gradcam" or self.class_index is None
        if needs_layer and not self.layer:
            raise InvalidInputError(
                "Give a layer (a dotted name from /layers)"
                + ("." if self.method == "gradcam" else ", or a class_index to explain a class score.")
            )
        if not self.layer:
            return
        info = lm.layer(self.layer)  # an unknown layer: 404 naming the closest ones, as everywhere
        if not info.output_shape:
            raise InvalidInputError(f"Layer '{self.layer}' is not called in the model's forward pass.")
        if self.channel is not None:
            n = info.output_shape[0]
            if not 0 <= self.channel < n:
                raise InvalidInputError(
                    f"Channel {self.channel} is out of range for layer '{self.layer}' with {n} channels (0..{n - 1})."
                )
        if self.neuron is not None:
            n = int(np.prod(info.output_shape))
            if not 0 <= self.neuron < n:
                raise InvalidInputError(
                    f"Neuron {self.neuron} is out of range for layer '{self.layer}' with {n} units (0..{n - 1})."
                )
        if self.method == "gradcam" and len(info.output_shape) != 3:
            raise InvalidInputError(
                f"Grad-CAM needs a layer with a (C, H, W) output; '{self.layer}' gives {list(info.output_shape)}."
            )

    @property
    def target_kind(self) -> str:
        if self.method == "gradcam" or self.class_index is not None:
            return "class"
        if self.neuron is not None:
            return "neuron"
        if self.channel is not None:
            return "filter"
        return "top_k"


def map_png(attr: Attribution) -> bytes:
    if attr.method == "gradcam":
        return png_bytes(colorize(normalize_maps(attr.map[None], shared_scale=True)[0]))
    return png_bytes(signed_map_to_rgb(attr.map), upscale_to=224)


class AttributionService(UploadService):
    def compute(self, lm: LoadedModel, img: Image.Image, sha: str, req: AttributionRequest) -> dict[str, Any]:
        req.validate(lm)
        cache_key = content_key("attr", lm.cache_key, sha, repr(req))
        cached = self.cache.get(cache_key)
        if cached is not None:
            return cached
        x, cropped = lm.preprocess(img)
        # no model lock: hooks and rectifier rewriting are this thread's (rectifiers.py)
        if req.target_kind == "top_k":
            assert req.layer is not None
            attrs = backprop_top_filters(lm.model, x, req.layer, req.top_k or 1, req.method, req.position)
        else:
            # a class target explains the class score; Grad-CAM reads it at `layer`
            layer = req.layer if req.target_kind != "class" or req.method == "gradcam" else None
            target = Target(layer, req.channel, req.neuron, req.class_index, req.position)  # type: ignore[arg-type]
            attrs = [attribute(lm.model, x, target, req.method)]
        maps = []
        for i, a in enumerate(attrs):
            self.artifacts.put(cache_key, f"map_{i}.png", map_png(a))
            self.artifacts.put(cache_key, f"map_{i}.npy", npy_bytes(a.map))
            maps.append(
                {
                    "channel": a.target.channel,
                    "neuron": a.target.neuron,
                    "class_index": a.class_index,
                    "value": a.value,
                    "position": list(a.position) if a.position is not None else None,
                    "png_url": self.artifacts.url(cache_key, f"map_{i}.png"),
                    "npy_url": self.artifacts.url(cache_key, f"map_{i}.npy"),
                }
            )
        input_name = "input.png"
        self.artifacts.put(
            cache_key, input_name, png_bytes(np.asarray(cropped.convert("RGB")), upscale_to=224)
        )
        out = {
            **lm.describe(),
            "method": req.method,
            "layer": req.layer,
            "position": req.position,
            "target_kind": req.target_kind,
            "image_sha256": sha,
            "map_shape": list(attrs[0].map.shape),
            "png_url": maps[0]["png_url"],
            "npy_url": maps[0]["npy_url"],
            "input_url": self.artifacts.url(cache_key, input_name),
            "maps": maps,
        }
        self.cache.put(cache_key, out)
        return out
