"""Loading models from the registry onto the device, with a small LRU of loaded models."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from PIL import Image
from torch import nn

from server.engine.imaging import Preprocessing, preprocess
from server.engine.inference import prepare_for_inference, resolve_device, to_model_input
from server.engine.layers import LayerInfo, layer_tree
from server.errors import WeightsUnavailableError
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

    def preprocess(self, img: Image.Image) -> tuple[torch.Tensor, Image.Image]:
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


def weights_status(spec: ModelSpec) -> tuple[str, str, str]:
    """(status, source, message) without loading anything heavy."""
    try:
        loc = spec.locate_weights()
    except Exception as exc:  # a broken catalogue entry must not break listing
        return "unavailable", "", f"{type(exc).__name__}: {exc}"
    return loc.status, loc.source, loc.message


class ZooManager:
    """Builds, loads and caches models; ``load(id, untrained=True)`` builds random weights on request.

    It reads the registry, which :func:`server.zoo.builtin.ensure_registered` fills (the composition
    root calls it). One per :class:`server.services.Services`.
    """

    def __init__(self, device: str = "auto", max_loaded: int = 4) -> None:
        self.device = resolve_device(device)
        self.max_loaded = max_loaded
        self._loaded: OrderedDict[tuple[str, bool], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
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
            loaded = self._build(spec, untrained)
            with self._lock:
                self._loaded[key] = loaded
                while len(self._loaded) > self.max_loaded:
                    self._loaded.popitem(last=False)
            return loaded

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

    def loaded_ids(self) -> list[tuple[str, bool]]:
        with self._lock:
            return list(self._loaded)
