"""Loading models from the registry onto the device, with an LRU of loaded models bounded in bytes."""

from __future__ import annotations

import gc
import os
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image
from torch import nn

from server.engine.imaging import Preprocessing, preprocess
from server.engine.inference import prepare_for_inference, resolve_device, to_model_input
from server.engine.layers import LayerInfo, layer_tree
from server.errors import InsufficientStorageError, InvalidInputError, WeightsUnavailableError
from server.zoo.imagenet import imagenet_labels
from server.zoo.registry import ModelCard, ModelSpec, get_spec, list_specs


def card_with_labels(card: ModelCard) -> ModelCard:
    """The card with ImageNet's class names filled in for an ImageNet classifier that does not name its own."""
    if not card.labels and card.num_classes == 1000 and card.pretrained_on == "ImageNet-1k":
        return replace(card, labels=imagenet_labels())
    return card


@dataclass
class LoadedModel:
    id: str
    model: nn.Module
    card: ModelCard
    device: torch.device
    untrained: bool
    weights_source: str
    lock: threading.RLock = field(default_factory=threading.RLock)
    _layers: list[LayerInfo] | None = None

    @property
    def prep(self) -> Preprocessing:
        return self.card.preprocessing

    @property
    def pretrained(self) -> bool:
        return not self.untrained

    def example_input(self, batch: int = 1) -> torch.Tensor:
        c, h, w = self.card.input_size
        g = torch.Generator().manual_seed(0)
        return to_model_input(torch.randn(batch, c, h, w, generator=g), self.model, self.device)

    def to_input(self, x: torch.Tensor) -> torch.Tensor:
        return to_model_input(x, self.model, self.device)

    def require_image_input(self) -> None:
        """422 for a model whose input is not an image: a generator takes a latent vector."""
        if self.card.kind == "generator":
            where = f"POST /api/v1/gan/{self.card.gan}/generate" if self.card.gan else "its GAN"
            raise InvalidInputError(
                f"Model '{self.id}' is a generator: its input is a latent vector, not an image. "
                f"Generate images with {where}, or browse its layers with /activations and latent_seed."
            )

    def preprocess(self, img: Image.Image) -> tuple[torch.Tensor, Image.Image]:
        self.require_image_input()
        x, cropped = preprocess(img, self.prep)
        return self.to_input(x), cropped

    def layers(self) -> list[LayerInfo]:
        if self._layers is None:
            with self.lock:
                self._layers = layer_tree(self.model, self.example_input())
        return self._layers

    def layer(self, name: str) -> LayerInfo:
        from server.engine.hooks import get_module

        get_module(self.model, name)  # raises NotFoundError with suggestions
        return next(layer for layer in self.layers() if layer.name == name)

    @property
    def cache_key(self) -> str:
        """Identifies these weights in content-keyed caches (random weights are seeded, so stable too)."""
        return f"{self.id}:{'untrained' if self.untrained else self.weights_source}"

    def describe(self) -> dict[str, Any]:
        return {"model": self.id, "untrained": self.untrained, "pretrained": self.pretrained}


def model_bytes(model: nn.Module) -> int:
    """The memory a model's parameters and buffers take (what the zoo's budget counts)."""
    tensors = [*model.parameters(), *model.buffers()]
    return sum(t.numel() * t.element_size() for t in tensors)


def default_memory_budget(device: torch.device) -> int:
    """80% of the free GPU memory on CUDA, half of the machine's RAM otherwise."""
    if device.type == "cuda":
        free, _total = torch.cuda.mem_get_info(device)
        return int(free * 0.8)
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def _fmt(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB"


def weights_status(spec: ModelSpec) -> tuple[str, str, str]:
    """(status, source, message) without loading, training or downloading anything."""
    try:
        loc = spec.peek()
    except Exception as exc:  # a broken catalogue entry must not break listing
        return "unavailable", "", f"{type(exc).__name__}: {exc}"
    return loc.status, loc.source, loc.message


_FORMATS = {
    ".safetensors": "safetensors",
    ".pt": "state dict (torch.load, weights only)",
    ".pth": "state dict (torch.load, weights only)",
    ".bin": "state dict (torch.load, weights only)",
    ".ckpt": "training checkpoint (torch.load, weights only)",
    ".pt2": "torch.export",
}


def model_group(spec: ModelSpec) -> str:
    """``lab`` for the models of the lab's catalogue, ``built-in`` for those ConvLens ships."""
    return "lab" if "user" in spec.tags else "built-in"


def model_origin(spec: ModelSpec) -> dict[str, str]:
    """Where a model comes from: the class that builds it, the checkpoint file and its format."""
    try:
        loc = spec.peek()
    except Exception:  # a broken catalogue entry must not break listing
        loc = None
    path = loc.path if loc is not None else None
    fmt = spec.card.weights_format or (_FORMATS.get(path.suffix, path.suffix) if path is not None else "")
    if not fmt and loc is not None and loc.source.startswith("download"):
        fmt = "download"
    return {
        "class": spec.card.model_class or spec.card.architecture,
        "checkpoint": path.name if path is not None else "",
        "format": fmt,
        "group": model_group(spec),
    }


class ZooManager:
    """Builds, loads and caches models; ``load(id, untrained=True)`` builds random weights on request.

    It reads the registry, which :func:`server.zoo.builtin.ensure_registered` fills (the composition
    root calls it). One per :class:`server.services.Services`.

    Loaded models are kept least recently used first within ``memory_bytes`` (their parameters and
    buffers; 0 = :func:`default_memory_budget`). Pretrained and untrained builds count alike; a model
    evicted while a job still holds it keeps counting until it is freed. A model that cannot fit is an
    :class:`InsufficientStorageError` (507), found out before it is built.
    """

    def __init__(self, device: str = "auto", memory_bytes: int = 0) -> None:
        self.device = resolve_device(device)
        self.memory_bytes = memory_bytes or default_memory_budget(self.device)
        self._loaded: OrderedDict[tuple[str, bool], LoadedModel] = OrderedDict()
        self._sizes: dict[tuple[str, bool], int] = {}
        self._evicted: list[tuple[weakref.ref[LoadedModel], int]] = []  # still referenced elsewhere?
        self._estimates: dict[str, int] = {}
        self._lock = threading.Lock()
        self._build_lock = threading.Lock()
        self._loading: dict[tuple[str, bool], threading.Lock] = {}

    def specs(self) -> list[ModelSpec]:
        return list_specs()

    def spec(self, model_id: str) -> ModelSpec:
        """The registered spec; an unknown id is a NotFoundError with suggestions."""
        return get_spec(model_id)

    def card(self, model_id: str) -> ModelCard:
        return card_with_labels(get_spec(model_id).card)

    def load(self, model_id: str, untrained: bool = False) -> LoadedModel:
        spec = get_spec(model_id)  # NotFoundError with suggestions
        key = (model_id, untrained)
        with self._lock:
            if key in self._loaded:
                self._loaded.move_to_end(key)
                return self._loaded[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._loaded:
                    return self._loaded[key]
            with self._build_lock:  # one build at a time, so that two cannot both take the same room
                self._make_room(model_id, self.estimate_bytes(spec))
                loaded = self._build(spec, untrained)
                size = model_bytes(loaded.model)
                self._estimates[model_id] = size
                if size > self.memory_bytes:  # an architecture the meta estimate could not build
                    del loaded
                    self._make_room(model_id, size)
                    raise AssertionError("unreachable: _make_room raises for a model over the budget")
                with self._lock:
                    self._loaded[key] = loaded
                    self._sizes[key] = size
                return loaded

    def estimate_bytes(self, spec: ModelSpec) -> int:
        """The bytes a build of ``spec`` takes, measured on the meta device (nothing allocated)."""
        model_id = spec.card.id
        if model_id not in self._estimates:
            try:
                with torch.device("meta"):
                    self._estimates[model_id] = model_bytes(spec.build())
            except Exception:  # an architecture that cannot be built on meta: counted once built
                return 0
        return self._estimates[model_id]

    def used_bytes(self) -> int:
        """Bytes of the loaded models plus evicted ones still held by a running request or job."""
        with self._lock:
            self._evicted = [(ref, n) for ref, n in self._evicted if ref() is not None]
            return sum(self._sizes.values()) + sum(n for _ref, n in self._evicted)

    def _make_room(self, model_id: str, size: int) -> None:
        if size > self.memory_bytes:
            raise InsufficientStorageError(
                f"Model '{model_id}' needs {_fmt(size)}, more than the whole model memory budget of "
                f"{_fmt(self.memory_bytes)}; raise CONVLENS_MODEL_MEMORY_BYTES to load it."
            )
        with self._lock:
            while self._loaded and sum(self._sizes.values()) + size > self.memory_bytes:
                old_key, old = self._loaded.popitem(last=False)
                self._evicted.append((weakref.ref(old), self._sizes.pop(old_key)))
                del old
        if self.used_bytes() + size > self.memory_bytes:
            gc.collect()  # evicted models held only by reference cycles
            if self.used_bytes() + size > self.memory_bytes:
                raise InsufficientStorageError(
                    f"Model '{model_id}' needs {_fmt(size)} but only "
                    f"{_fmt(max(0, self.memory_bytes - self.used_bytes()))} of the model memory budget "
                    "are free while running jobs hold other models; retry when they finish, or raise "
                    "CONVLENS_MODEL_MEMORY_BYTES."
                )

    def _build(self, spec: ModelSpec, untrained: bool) -> LoadedModel:
        if untrained:
            torch.manual_seed(0)
            model = spec.build()
            source = "random initialisation (untrained, requested explicitly)"
        else:
            loc = spec.locate_weights()
            if loc.status != "available":
                raise WeightsUnavailableError(f"Model '{spec.card.id}': {loc.message}")
            model = spec.build()
            spec.load_weights(model, loc)
            source = loc.source
        model = prepare_for_inference(model, self.device)
        return LoadedModel(spec.card.id, model, card_with_labels(spec.card), self.device, untrained, source)

    def with_state(self, model_id: str, state: dict[str, torch.Tensor], source: str) -> LoadedModel:
        """``model_id``'s architecture with the weights of ``state`` (a checkpoint), not kept in the LRU:
        it counts against the memory budget for as long as the caller holds it. ``source`` names the
        weights in answers and in content-keyed caches (so it must differ per checkpoint)."""
        from server.zoo.checkpoints import load_into

        spec = get_spec(model_id)
        with self._build_lock:
            size = self.estimate_bytes(spec)
            self._make_room(model_id, size)
            model = spec.build()
            load_into(model, dict(state), source=source)
            model = prepare_for_inference(model, self.device)
            loaded = LoadedModel(spec.card.id, model, card_with_labels(spec.card), self.device, False, source)
            with self._lock:  # counted like an evicted model still in use: until its last reference goes
                self._evicted.append((weakref.ref(loaded), size or model_bytes(model)))
        return loaded

    def loaded_ids(self) -> list[tuple[str, bool]]:
        with self._lock:
            return list(self._loaded)
