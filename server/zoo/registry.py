"""The model registry: each entry is a model card plus a builder and a weights locator.

A leaf module: it knows nothing of the models themselves. The built-in and catalogue models are put
in by :func:`server.zoo.builtin.ensure_registered`, which the composition root calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from torch import nn

from server.engine.imaging import Preprocessing
from server.errors import NotFoundError


@dataclass(frozen=True)
class ModelCard:
    """What a user needs to know about a model, and what its input must look like."""

    id: str
    architecture: str
    source: str  # timm | torchvision | convlens | catalogue | torch.export | torchscript
    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    num_classes: int
    labels: tuple[str, ...] = ()
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    description: str = ""
    weights_source: str = ""  # where the weights come from (package, file, hub cache, download)
    pretrained_on: str = ""  # e.g. "ImageNet-1k", "sklearn digits"
    default_layer: str = ""
    model_class: str = (
        ""  # what builds it: "mynet:MyNet" (user code), a torchvision/timm name, "ExportedProgram"
    )
    weights_format: str = ""  # how its weights are stored, when the file name does not say (see zoo.origin)
    kind: str = "classifier"  # classifier | generator (input: a latent vector) | discriminator | recurrent
    # recurrent models: cell, input_length, hidden_size, gates, reading_order (see server/zoo/recurrent.py)
    recurrent: dict[str, Any] = field(default_factory=dict, hash=False)
    gan: str = ""  # generator / discriminator: the GAN it is half of (GET /api/v1/gan/{gan}/...)

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(self.input_size, self.mean, self.std, self.crop_pct, self.interpolation)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        d["mean"] = list(self.mean)
        d["std"] = list(self.std)
        d["labels"] = list(self.labels)
        d["recurrent"] = dict(self.recurrent)
        return d


@dataclass(frozen=True)
class WeightsLocation:
    """Where a model's weights are, or why they are not here."""

    status: str  # available | unavailable
    path: Path | None = None
    source: str = ""
    message: str = ""


@dataclass
class ModelSpec:
    card: ModelCard
    build: Callable[[], nn.Module]  # architecture with random weights
    locate_weights: Callable[[], WeightsLocation]
    load_weights: Callable[[nn.Module, WeightsLocation], None]
    tags: tuple[str, ...] = field(default_factory=tuple)
    # what training measured (e.g. held-out accuracy), read when a card is shown; {} when not trained yet
    metrics: Callable[[], dict[str, Any]] | None = None
    # where the weights are without training or fetching anything (listing a model); None: locate_weights
    peek_weights: Callable[[], WeightsLocation] | None = None

    def peek(self) -> WeightsLocation:
        """The weights' location as a listing may report it: never trains or downloads."""
        return (self.peek_weights or self.locate_weights)()

    def with_card(self, **changes: Any) -> ModelSpec:
        return replace(self, card=replace(self.card, **changes))


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    _REGISTRY[spec.card.id] = spec
    return spec


def unregister_model(model_id: str) -> None:
    _REGISTRY.pop(model_id, None)


def list_specs() -> list[ModelSpec]:
    return list(_REGISTRY.values())


def get_spec(model_id: str) -> ModelSpec:
    try:
        return _REGISTRY[model_id]
    except KeyError:
        raise NotFoundError.with_suggestions("model", model_id, _REGISTRY) from None
