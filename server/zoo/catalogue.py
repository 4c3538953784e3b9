"""User models registered in ``<models_dir>/catalogue.toml``.

```toml
[weights]                       # local weight files for built-in models (relative to models_dir)
resnet18 = "resnet18-f37072fd.pth"

[[model]]                       # a checkpoint for an architecture ConvLens knows
id = "my_resnet"
architecture = "resnet18"       # a torchvision or timm architecture name
weights = "my_resnet.safetensors"
num_classes = 3
labels = ["cat", "dog", "fox"]
input_size = [3, 224, 224]      # optional, with mean / std / crop_pct / interpolation
description = "..."

[[model]]                       # an architecture ConvLens does not know: TorchScript
id = "my_scripted"
torchscript = "my_scripted.pt"
num_classes = 10
```
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from server.config import get_settings
from server.errors import InvalidInputError
from server.zoo.checkpoints import load_into, load_torchscript, read_state_dict
from server.zoo.imagenet import IMAGENET_MEAN, IMAGENET_STD
from server.zoo.registry import ModelCard, ModelSpec, WeightsLocation, register_model, unregister_model


@dataclass
class Catalogue:
    weights: dict[str, str] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None


def catalogue_path() -> Path:
    return get_settings().models_dir / "catalogue.toml"


def read_catalogue(path: Path | None = None) -> Catalogue:
    path = path or catalogue_path()
    if not path.is_file():
        return Catalogue(path=path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{path} is not valid TOML: {exc}") from None
    return Catalogue(weights=dict(data.get("weights", {})), models=list(data.get("model", [])), path=path)


def build_architecture(name: str, num_classes: int) -> nn.Module:
    """A torchvision or timm architecture by name, random weights, ``num_classes`` outputs."""
    import torchvision

    if name in torchvision.models.list_models(module=torchvision.models):
        kwargs: dict[str, Any] = {"weights": None, "num_classes": num_classes}
        if name in ("googlenet", "inception_v3"):
            kwargs.update(aux_logits=False, init_weights=False)
        return torchvision.models.get_model(name, **kwargs)
    import timm

    if timm.is_model(name):
        return timm.create_model(name, pretrained=False, num_classes=num_classes)
    raise InvalidInputError(
        f"Unknown architecture '{name}': use a torchvision or timm model name, or register a TorchScript file."
    )


def _locate(path: Path) -> WeightsLocation:
    if path.is_file():
        return WeightsLocation("available", path, f"catalogue file: {path}")
    return WeightsLocation("unavailable", message=f"Catalogue names '{path}', which does not exist.")


def _load_state(model: nn.Module, loc: WeightsLocation) -> None:
    assert loc.path is not None
    load_into(model, read_state_dict(loc.path), source=f"checkpoint '{loc.path.name}'")


def spec_from_entry(entry: dict[str, Any], models_dir: Path) -> ModelSpec:
    try:
        model_id = str(entry["id"])
    except KeyError:
        raise InvalidInputError("Every [[model]] in the catalogue needs an 'id'.") from None
    num_classes = int(entry.get("num_classes", 1000))
    labels = tuple(entry.get("labels", ()))
    if "labels_file" in entry:
        labels = tuple((models_dir / entry["labels_file"]).read_text().split("\n"))
        labels = tuple(x for x in labels if x.strip())
    card = ModelCard(
        id=model_id,
        architecture=str(entry.get("architecture", "torchscript")),
        source="torchscript" if "torchscript" in entry else "catalogue",
        input_size=tuple(entry.get("input_size", (3, 224, 224))),  # type: ignore[arg-type]
        mean=tuple(entry.get("mean", IMAGENET_MEAN)),
        std=tuple(entry.get("std", IMAGENET_STD)),
        num_classes=num_classes,
        labels=labels,
        crop_pct=float(entry.get("crop_pct", 0.875)),
        interpolation=str(entry.get("interpolation", "bilinear")),
        description=str(entry.get("description", "User model from the catalogue.")),
        pretrained_on=str(entry.get("pretrained_on", "")),
        default_layer=str(entry.get("default_layer", "")),
    )
    if "torchscript" in entry:
        path = models_dir / entry["torchscript"]

        def build_ts() -> nn.Module:
            if not path.is_file():
                raise InvalidInputError(f"TorchScript file '{path}' does not exist.")
            return load_torchscript(path)

        return ModelSpec(card, build_ts, functools.partial(_locate, path), lambda m, loc: None, ("user",))
    if "architecture" not in entry or "weights" not in entry:
        raise InvalidInputError(
            f"Catalogue model '{model_id}' needs 'architecture' and 'weights' (or 'torchscript')."
        )
    path = models_dir / entry["weights"]
    return ModelSpec(
        card,
        functools.partial(build_architecture, card.architecture, num_classes),
        functools.partial(_locate, path),
        _load_state,
        ("user",),
    )


_registered: list[str] = []
catalogue_errors: list[str] = []  # readable problems with the catalogue, shown by GET /models


def register_catalogue_models() -> list[str]:
    """(Re)register every [[model]] of the catalogue; returns their ids. A bad entry is skipped and its
    problem recorded in ``catalogue_errors`` so that one typo does not take the whole zoo down."""
    for model_id in _registered:
        unregister_model(model_id)
    _registered.clear()
    catalogue_errors.clear()
    try:
        cat = read_catalogue()
    except InvalidInputError as exc:
        catalogue_errors.append(exc.message)
        return []
    models_dir = get_settings().models_dir
    for entry in cat.models:
        try:
            spec = spec_from_entry(entry, models_dir)
        except (InvalidInputError, OSError, ValueError, TypeError) as exc:
            catalogue_errors.append(f"catalogue entry {entry.get('id', '?')!r}: {exc}")
            continue
        register_model(spec)
        _registered.append(spec.card.id)
    return list(_registered)
