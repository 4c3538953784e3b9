"""User models registered in ``<models_dir>/catalogue.toml``.

```toml
[weights]                       # local weight files for built-in models (relative to models_dir)
resnet18 = "resnet18-f37072fd.pth"

[[model]]                       # the lab's own class, from the user-code folder (CONVLENS_USER_CODE_DIR)
id = "mynet"
module = "mynet:MyNet"          # class MyNet in <user code dir>/mynet.py
kwargs = {num_classes = 10}     # optional constructor arguments
weights = "mynet.safetensors"   # optional: .safetensors, or a .pt/.pth/.ckpt state dict / training checkpoint
checkpoint_weights = "ema"      # optional: "ema" or "raw" when the checkpoint holds both
input_size = [3, 32, 32]
labels = ["cat", "dog", "fox"]  # or labels_file = "labels.txt"

[[model]]                       # a checkpoint for an architecture ConvLens knows
id = "my_resnet"
architecture = "resnet18"       # a torchvision or timm architecture name
weights = "my_resnet.safetensors"
num_classes = 3

[[model]]                       # a torch.export archive (checked before loading: docs/SECURITY.md)
id = "my_exported"
exported = "my_net.pt2"

[[model]]                       # TorchScript, for existing files
id = "my_scripted"
torchscript = "my_scripted.pt"
num_classes = 10
```

Every entry may also set ``mean``, ``std``, ``crop_pct``, ``interpolation``, ``description``,
``pretrained_on`` and ``default_layer``. Paths are relative to ``models_dir`` (or absolute).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from server.config import Settings, get_settings
from server.errors import InvalidInputError
from server.zoo.checkpoints import load_into, load_torchscript, read_state_dict
from server.zoo.exported import load_exported
from server.zoo.imagenet import IMAGENET_MEAN, IMAGENET_STD
from server.zoo.registry import (
    ModelCard,
    ModelSpec,
    WeightsLocation,
    list_specs,
    register_model,
    unregister_model,
)
from server.zoo.user_code import instantiate, resolve_class

KINDS = ("module", "architecture", "exported", "torchscript")
CATALOGUE_NAME = "catalogue.toml"


@dataclass
class Catalogue:
    weights: dict[str, str] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    path: Path | None = None


def catalogue_path(settings: Settings | None = None) -> Path:
    return (settings or get_settings()).models_dir / CATALOGUE_NAME


def parse_catalogue(text: str, path: Path) -> Catalogue:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(f"{path.name} is not valid TOML: {exc}") from None
    models = data.get("model", [])
    if not isinstance(models, list) or not all(isinstance(m, dict) for m in models):
        raise InvalidInputError(f"{path.name}: 'model' must be a list of [[model]] tables.")
    return Catalogue(weights=dict(data.get("weights", {})), models=list(models), path=path)


def read_catalogue(path: Path | None = None) -> Catalogue:
    path = path or catalogue_path()
    if not path.is_file():
        return Catalogue(path=path)
    return parse_catalogue(path.read_text(), path)


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
        f"Unknown architecture '{name}': use a torchvision or timm model name, or name your own class "
        "with module = 'file:Class'."
    )


def _path(models_dir: Path, name: Any) -> Path:
    p = Path(str(name))
    return p if p.is_absolute() else models_dir / p


def _locate(path: Path) -> WeightsLocation:
    if path.is_file():
        return WeightsLocation("available", path, f"catalogue file: {path}")
    return WeightsLocation("unavailable", message=f"Catalogue names '{path}', which does not exist.")


def _no_weights(model_id: str) -> WeightsLocation:
    return WeightsLocation(
        "unavailable",
        message=f"Catalogue model '{model_id}' names no weights: add weights = \"<file>\" to its entry, "
        "or add ?untrained=true to explore the architecture with random weights.",
    )


def _in_archive(path: Path) -> WeightsLocation:
    loc = _locate(path)
    return WeightsLocation(
        loc.status, loc.path, loc.source.replace("catalogue file", "inside the archive"), loc.message
    )


def _load_state(weights: str, model: nn.Module, loc: WeightsLocation) -> None:
    assert loc.path is not None
    load_into(model, read_state_dict(loc.path, weights), source=f"checkpoint '{loc.path.name}'")


def _labels(entry: dict[str, Any], models_dir: Path) -> tuple[str, ...]:
    if "labels_file" in entry:
        path = _path(models_dir, entry["labels_file"])
        if not path.is_file():
            raise InvalidInputError(f"labels_file '{entry['labels_file']}' does not exist.")
        return tuple(x.strip() for x in path.read_text().splitlines() if x.strip())
    return tuple(str(x) for x in entry.get("labels", ()))


def _normalisation(entry: dict[str, Any], channels: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
    default = (IMAGENET_MEAN, IMAGENET_STD) if channels == 3 else ((0.0,) * channels, (1.0,) * channels)
    mean = tuple(float(x) for x in entry.get("mean", default[0]))
    std = tuple(float(x) for x in entry.get("std", default[1]))
    if len(mean) != channels or len(std) != channels:
        raise InvalidInputError(f"mean and std need {channels} values each (one per input channel).")
    return mean, std


def entry_kind(entry: dict[str, Any]) -> str:
    kinds = [k for k in KINDS if k in entry]
    if len(kinds) != 1:
        raise InvalidInputError(
            f"Catalogue model '{entry.get('id', '?')}' needs exactly one of "
            f"{', '.join(repr(k) for k in KINDS)} (it has {', '.join(kinds) or 'none'})."
        )
    return kinds[0]


def spec_from_entry(entry: dict[str, Any], settings: Settings | None = None) -> ModelSpec:
    """The registry spec of one ``[[model]]``; a ``module`` entry's code is imported here (see
    :mod:`server.zoo.user_code`), so a broken file is an error of the catalogue, not of a request."""
    settings = settings or get_settings()
    models_dir = settings.models_dir
    if "id" not in entry:
        raise InvalidInputError("Every [[model]] in the catalogue needs an 'id'.")
    model_id = str(entry["id"])
    kind = entry_kind(entry)
    input_size = tuple(int(x) for x in entry.get("input_size", (3, 224, 224)))
    if len(input_size) != 3 or min(input_size) < 1:
        raise InvalidInputError(f"input_size of '{model_id}' must be [channels, height, width].")
    labels = _labels(entry, models_dir)
    num_classes = int(entry.get("num_classes") or len(labels) or 1000)
    mean, std = _normalisation(entry, input_size[0])
    weights_pref = str(entry.get("checkpoint_weights", settings.checkpoint_weights))
    if weights_pref not in ("ema", "raw"):
        raise InvalidInputError(f"checkpoint_weights of '{model_id}' must be 'ema' or 'raw'.")
    card = dict(
        id=model_id,
        source="catalogue",
        input_size=input_size,
        mean=mean,
        std=std,
        num_classes=num_classes,
        labels=labels,
        crop_pct=float(entry.get("crop_pct", 1.0 if input_size[1] < 64 else 0.875)),
        interpolation=str(entry.get("interpolation", "bilinear")),
        description=str(entry.get("description", "The lab's own model, from the catalogue.")),
        pretrained_on=str(entry.get("pretrained_on", "")),
        default_layer=str(entry.get("default_layer", "")),
    )
    tags = ("user",)
    if kind == "torchscript":
        card["source"] = "torchscript"
        path = _path(models_dir, entry["torchscript"])

        def build_ts() -> nn.Module:
            if not path.is_file():
                raise InvalidInputError(f"TorchScript file '{path.name}' does not exist.")
            return load_torchscript(path)

        c = ModelCard(
            architecture="torchscript",
            model_class="TorchScript archive",
            weights_format="TorchScript",
            **card,
        )
        return ModelSpec(c, build_ts, functools.partial(_in_archive, path), lambda m, loc: None, tags)
    if kind == "exported":
        card["source"] = "torch.export"
        path = _path(models_dir, entry["exported"])
        c = ModelCard(
            architecture="torch.export", model_class="ExportedProgram", weights_format="torch.export", **card
        )
        return ModelSpec(
            c,
            functools.partial(load_exported, path),
            functools.partial(_in_archive, path),
            lambda m, loc: None,
            tags,
        )
    weights = entry.get("weights")
    locate = (
        functools.partial(_locate, _path(models_dir, weights))
        if weights
        else functools.partial(_no_weights, model_id)
    )
    load = functools.partial(_load_state, weights_pref)
    if kind == "module":
        ref = str(entry["module"])
        kwargs = entry.get("kwargs", {})
        if not isinstance(kwargs, dict):
            raise InvalidInputError(
                f"kwargs of '{model_id}' must be a table, e.g. kwargs = {{num_classes = 10}}."
            )
        cls = resolve_class(ref, settings.resolved_user_code_dir)
        c = ModelCard(architecture=cls.__name__, model_class=ref, **card)
        return ModelSpec(c, functools.partial(instantiate, cls, dict(kwargs), ref), locate, load, tags)
    if not weights:
        raise InvalidInputError(f"Catalogue model '{model_id}' needs 'weights' next to 'architecture'.")
    arch = str(entry["architecture"])
    c = ModelCard(architecture=arch, model_class=arch, **card)
    return ModelSpec(c, functools.partial(build_architecture, arch, num_classes), locate, load, tags)


_registered: list[str] = []
catalogue_errors: list[str] = []  # readable problems with the catalogue, shown by GET /models


def register_catalogue_models(settings: Settings | None = None) -> list[str]:
    """(Re)register every [[model]] of the catalogue; returns their ids. A bad entry is skipped and its
    problem recorded in ``catalogue_errors`` so that one typo does not take the whole zoo down."""
    settings = settings or get_settings()
    for model_id in _registered:
        unregister_model(model_id)
    _registered.clear()
    catalogue_errors.clear()
    try:
        cat = read_catalogue(catalogue_path(settings))
    except InvalidInputError as exc:
        catalogue_errors.append(exc.message)
        return []
    taken = {s.card.id for s in list_specs()}  # the built-ins (this catalogue's were unregistered)
    for entry in cat.models:
        try:
            if str(entry.get("id")) in taken:
                raise InvalidInputError("the id is already a built-in or catalogue model: choose another")
            spec = spec_from_entry(entry, settings)
        except (InvalidInputError, OSError, ValueError, TypeError) as exc:
            catalogue_errors.append(f"catalogue entry {entry.get('id', '?')!r}: {exc}")
            continue
        register_model(spec)
        _registered.append(spec.card.id)
        taken.add(spec.card.id)
    return list(_registered)
