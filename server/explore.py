"""Predictions, layer activations and filter weights for one image: the explore page's use cases.

Application logic over the engine and the zoo, with a content-keyed cache; no web imports.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from PIL import Image

from server.artifacts import ArtifactStore, content_key
from server.config import Settings
from server.engine.batching import Batcher
from server.engine.compiled import Compiler, largest_bucket
from server.engine.hooks import capture, first_tensor, forward_until, get_module
from server.engine.imaging import (
    colorize,
    grid_shape,
    mosaic_png,
    normalize_maps,
    npy_bytes,
    png_bytes,
)
from server.engine.inference import channel_stats, precision_label, precision_mode, predict_topk
from server.engine.layers import module_type, weighted_layers
from server.errors import InvalidInputError, NotFoundError
from server.uploads import UploadService
from server.zoo.manager import LoadedModel


class ExploreService(UploadService):
    """Predictions, activations and weights of single inputs; concurrent forwards of one model and layer
    are batched (``server.engine.batching``)."""

    def __init__(
        self, settings: Settings, artifacts: ArtifactStore, compiler: Compiler | None = None
    ) -> None:
        super().__init__(settings, artifacts)
        self.compiler = compiler or Compiler("off")
        # compiled batches are padded to a bucket: take whole buckets from the queue
        self.batcher = Batcher(settings.batch_max, take=largest_bucket if self.compiler.enabled else None)

    def warm(self, lm: LoadedModel) -> None:
        """Queue the compile of ``lm``'s single-image predict (start-up: the default model)."""
        if lm.card.kind != "generator":
            self.compiler.forward(lm.model, None, lm.example_input(1), now=True)

    def _forward(
        self, lm: LoadedModel, layer: str | None, batch: torch.Tensor, precision: str
    ) -> tuple[torch.Tensor, bool]:
        """``layer``'s output (None: the logits) for ``batch`` as fp32, and whether compiled code ran it:
        exact precision runs compiled once its compile is ready (``server.engine.compiled``), else eager."""
        if precision == "exact" and (compiled := self.compiler.forward(lm.model, layer, batch)) is not None:
            return compiled(batch).float(), True
        if layer is None:
            return _logits(lm, batch, precision), False
        return _layer_output(lm, layer, batch, precision), False

    # --- input ------------------------------------------------------------------------------------------

    def _input_artifact(self, lm: LoadedModel, sha: str, cropped: Image.Image) -> str:
        """The URL of the input as the model sees it. Its raw pixels are stored now (0.2 ms); the PNG
        is encoded on its first GET (5 ms), off the path of the request that produced it."""
        key = content_key(lm.cache_key, sha, "input")
        if not self.artifacts.exists(key, "input.png") and not self.artifacts.exists(key, "input.npy"):
            self.artifacts.put(key, "input.npy", npy_bytes(np.asarray(cropped.convert("RGB"))))
        return self.artifacts.url(key, "input.png")

    # --- predictions ------------------------------------------------------------------------------------

    def predict(
        self, lm: LoadedModel, img: Image.Image, sha: str, top_k: int = 5, precision: str = "exact"
    ) -> dict[str, Any]:
        if not 1 <= top_k <= 100:
            raise InvalidInputError("top_k must be between 1 and 100.")
        label = precision_label(precision, lm.device)
        key = f"predict:{lm.cache_key}:{sha}:{top_k}:{label}"
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        x, cropped = lm.preprocess(img)
        # no lock: hooks of concurrent requests on this model act on their own thread's forward only
        logits, compiled = self.batcher.run_tagged(
            ("logits", lm.cache_key, label), x, lambda batch: self._forward(lm, None, batch, precision)
        )
        preds = predict_topk(logits, lm.card.labels, top_k)
        out = {
            **lm.describe(),
            "precision": label,
            "compiled": compiled,
            "image_sha256": sha,
            "predictions": [asdict(p) for p in preds],
            "input_url": self._input_artifact(lm, sha, cropped),
        }
        self.cache.put(key, out)
        return out

    # --- activations ------------------------------------------------------------------------------------

    def activations(
        self,
        lm: LoadedModel,
        img: Image.Image,
        sha: str,
        layer: str,
        shared_scale: bool = False,
        precision: str = "exact",
        top_k: int | None = None,
    ) -> dict[str, Any]:
        """A layer's activations for an image; with ``top_k`` also the image's top-k predictions, from the
        same forward (run to the end): one request per camera frame instead of two."""
        info = lm.layer(layer)  # NotFoundError with suggestions
        if top_k is not None and not 1 <= top_k <= 100:
            raise InvalidInputError("top_k must be between 1 and 100.")
        label = precision_label(precision, lm.device)
        key_str = f"act:{lm.cache_key}:{sha}:{layer}:{shared_scale}:{label}:{top_k}"
        cached = self.cache.get(key_str)
        if cached is not None:
            return cached
        x, cropped = lm.preprocess(img)
        logits: list[torch.Tensor] = []
        layer_fn = (
            None if top_k is None else lambda batch: _layer_and_logits(lm, layer, batch, precision, logits)
        )
        out = self._layer_activations(lm, x, sha, info, shared_scale, precision, layer_fn)
        if top_k is not None:
            out["predictions"] = [asdict(p) for p in predict_topk(logits[0], lm.card.labels, top_k)]
        out.update(image_sha256=sha, input_url=self._input_artifact(lm, sha, cropped))
        self.cache.put(key_str, out)
        return out

    def latent_activations(
        self, lm: LoadedModel, seed: int, layer: str, shared_scale: bool = False, precision: str = "exact"
    ) -> dict[str, Any]:
        """A generator's layer for the latent of ``seed`` (image 0 of POST /gan/{id}/generate's seed)."""
        from server.engine.gan import seeded_latents

        if lm.card.kind != "generator":
            raise InvalidInputError(f"Model '{lm.id}' takes an image, not a latent: send an image.")
        info = lm.layer(layer)
        key_str = (
            f"act:{lm.cache_key}:latent{seed}:{layer}:{shared_scale}:{precision_label(precision, lm.device)}"
        )
        cached = self.cache.get(key_str)
        if cached is not None:
            return cached
        z = seeded_latents(seed, 1, lm.card.input_size[0])[:, :, None, None]
        out = self._layer_activations(lm, lm.to_input(z), f"latent-{seed}", info, shared_scale, precision)
        out.update(latent_seed=seed, input_url=None)
        self.cache.put(key_str, out)
        return out

    def _layer_activations(
        self,
        lm: LoadedModel,
        x: torch.Tensor,
        input_id: str,
        info: Any,
        shared_scale: bool,
        precision: str = "exact",
        layer_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> dict[str, Any]:
        layer = info.name
        sha = input_id
        label = precision_label(precision, lm.device)
        if layer_fn is not None:  # the caller's own forward (one input: not batched with others), eager
            out_t, compiled = layer_fn(x), False
        else:  # thread-scoped hooks: no model lock; the network beyond `layer` is not computed
            out_t, compiled = self.batcher.run_tagged(
                ("layer", lm.cache_key, layer, label),
                x,
                lambda batch: self._forward(lm, layer, batch, precision),
            )
        act = out_t[0].float().cpu().numpy()
        if act.ndim == 1:
            act_maps = act[:, None, None]
        elif act.ndim == 3:
            act_maps = act
        else:
            act_maps = act.reshape(act.shape[0], -1)[:, None, :]
        art_key = content_key(lm.cache_key, sha, layer if label == "exact" else f"{layer}@{label}")
        rows, cols = grid_shape(act_maps.shape[0])
        mosaic_name = f"mosaic_{'shared' if shared_scale else 'per_channel'}.png"
        self.artifacts.put(art_key, mosaic_name, mosaic_png(act_maps, shared_scale=shared_scale, pad=1))
        self.artifacts.put(art_key, "activations.npy", npy_bytes(act))
        stats = channel_stats(act_maps)
        out = {
            **lm.describe(),
            "precision": label,
            "compiled": compiled,
            "layer": layer,
            "layer_type": info.type,
            "kind": info.kind,
            "shape": list(act.shape),
            "scale": "shared" if shared_scale else "per_channel",
            "value_range": [float(act_maps.min()), float(act_maps.max())],
            "channels": stats,
            "silent_channels": [s["index"] for s in stats if s["max"] <= 0],
            "mosaic_url": self.artifacts.url(art_key, mosaic_name),
            "mosaic_grid": {
                "rows": rows,
                "cols": cols,
                "tile_h": act_maps.shape[1],
                "tile_w": act_maps.shape[2],
                "pad": 1,
            },
            "channel_url_template": self.artifacts.url(art_key, "channel_{index}.png"),
            "npy_url": self.artifacts.url(art_key, "activations.npy"),
        }
        return out

    def render_on_demand(self, key: str, name: str) -> bytes | None:
        """PNGs rendered on their first GET from stored raw arrays: ``channel_<i>.png`` (one per
        channel) from activations.npy, ``input.png`` from input.npy, and ``<array>_heatmap.png`` from a
        2-D ``<array>.npy`` (rows x columns, one colour scale). None if ``name`` is none of these."""
        if name == "input.png" and self.artifacts.exists(key, "input.npy"):
            pixels = np.load(self.artifacts.path(key, "input.npy"), allow_pickle=False)
            data = png_bytes(pixels, upscale_to=224)
            self.artifacts.put(key, name, data)
            return data
        heat = re.fullmatch(
            r"(\w+)_heatmap\.png", name
        )  # a 2-D array (e.g. units x time of a recurrent trace)
        if heat and self.artifacts.exists(key, f"{heat.group(1)}.npy"):
            arr = np.load(self.artifacts.path(key, f"{heat.group(1)}.npy"), allow_pickle=False)
            data = png_bytes(
                colorize(normalize_maps(arr.reshape(1, arr.shape[0], -1), shared_scale=True)[0]),
                upscale_to=8 * max(arr.shape),
            )
            self.artifacts.put(key, name, data)
            return data
        m = re.fullmatch(r"channel_(\d+)\.png", name)
        if not m or not self.artifacts.exists(key, "activations.npy"):
            return None
        act = np.load(self.artifacts.path(key, "activations.npy"), allow_pickle=False)
        i = int(m.group(1))
        if i >= act.shape[0]:
            raise NotFoundError(
                f"Channel {i} out of range: the layer has {act.shape[0]} channels (0..{act.shape[0] - 1})."
            )
        ch = act[i]
        ch = ch.reshape(1, 1) if ch.ndim == 0 else ch.reshape(ch.shape[0], -1) if ch.ndim >= 2 else ch[None]
        data = png_bytes(colorize(normalize_maps(ch[None], shared_scale=False)[0]))
        self.artifacts.put(key, name, data)
        return data

    # --- weights ----------------------------------------------------------------------------------------

    def weights(self, lm: LoadedModel, layer: str) -> dict[str, Any]:
        module = get_module(lm.model, layer)
        weighted = weighted_layers(lm.model)
        names = [n for n, _ in weighted]
        if layer not in names:
            raise InvalidInputError(
                f"Layer '{layer}' has no conv or linear weights. Layers with weights include: {', '.join(names[:8])}."
            )
        w = module.weight.detach().float().cpu()
        flat = w.reshape(w.shape[0], -1)
        norms = flat.norm(dim=1)
        filters = [
            {
                "index": i,
                "norm": float(norms[i]),
                "mean": float(flat[i].mean()),
                "fraction_positive": float((flat[i] > 0).float().mean()),
            }
            for i in range(flat.shape[0])
        ]
        out: dict[str, Any] = {
            **lm.describe(),
            "layer": layer,
            "type": module_type(module),
            "shape": list(w.shape),
            "is_first_conv": layer == names[0],
            "fraction_positive": float((flat > 0).float().mean()),
            "filters": filters,
            "rgb_tiles_url": None,
        }
        if layer == names[0] and w.dim() == 4 and w.shape[1] == 3:
            key = content_key(lm.cache_key, layer, "rgb")
            if not self.artifacts.exists(key, "rgb_tiles.png"):
                self.artifacts.put(
                    key, "rgb_tiles.png", png_bytes(rgb_filter_mosaic(w.numpy()), upscale_to=256)
                )
            out["rgb_tiles_url"] = self.artifacts.url(key, "rgb_tiles.png")
        return out

    def filter_weights(self, lm: LoadedModel, layer: str, index: int) -> dict[str, Any]:
        module = get_module(lm.model, layer)
        if not hasattr(module, "weight") or module.weight is None or module.weight.dim() < 2:
            raise InvalidInputError(f"Layer '{layer}' has no conv or linear weights.")
        w = module.weight.detach().float().cpu()
        if not 0 <= index < w.shape[0]:
            raise InvalidInputError(
                f"Filter {index} out of range: layer '{layer}' has {w.shape[0]} filters (0..{w.shape[0] - 1})."
            )
        f = w[index]
        out = {**lm.describe(), "layer": layer, "index": index, "shape": list(f.shape), "values": f.tolist()}
        if f.dim() == 3 and f.shape[0] == 3:
            out["rgb"] = rgb_filter_mosaic(w[index : index + 1].numpy())[1:-1, 1:-1].tolist()
        return out


def rgb_filter_mosaic(w: np.ndarray, pad: int = 1) -> np.ndarray:
    """First-layer filters (N, 3, k, k) as RGB tiles, each scaled symmetrically around grey."""
    n, _, kh, kw = w.shape
    rows, cols = grid_shape(n)
    out = np.full((rows * (kh + pad) + pad, cols * (kw + pad) + pad, 3), 255, dtype=np.uint8)
    for i in range(n):
        f = w[i]
        s = float(np.abs(f).max()) or 1.0
        tile = np.clip((f / s * 0.5 + 0.5) * 255.0, 0, 255).astype(np.uint8).transpose(1, 2, 0)
        r, q = divmod(i, cols)
        y, x = pad + r * (kh + pad), pad + q * (kw + pad)
        out[y : y + kh, x : x + kw] = tile
    return out


def _logits(lm: LoadedModel, batch: torch.Tensor, precision: str = "exact") -> torch.Tensor:
    with torch.inference_mode(), precision_mode(precision, lm.device):
        out: torch.Tensor = lm.model(batch)
    return out.float()


def _layer_and_logits(
    lm: LoadedModel, layer: str, batch: torch.Tensor, precision: str, logits: list[torch.Tensor]
) -> torch.Tensor:
    """``layer``'s output for ``batch`` from a full forward, whose logits are appended to ``logits``."""
    with (
        capture(lm.model, [layer], strict=True) as cap,
        torch.inference_mode(),
        precision_mode(precision, lm.device),
    ):
        result = cap.run(batch)
    out = first_tensor(result)
    if out is None:
        raise InvalidInputError("The model returned no tensor to take its predictions from.")
    logits.append(out.float())
    return cap[layer].float()


def _layer_output(lm: LoadedModel, layer: str, batch: torch.Tensor, precision: str = "exact") -> torch.Tensor:
    """``layer``'s output for ``batch``, the forward stopped after it (fp32 whatever the precision)."""
    with precision_mode(precision, lm.device):
        acts = forward_until(lm.model, [layer], batch)
    if layer not in acts:
        raise InvalidInputError(f"Layer '{layer}' produced no tensor output in a forward pass.")
    return acts[layer].float()
