"""``convlens models add``: a catalogue entry written only after a dry run that loads the model and runs
one forward on a random input of the declared size; the catalogue is replaced atomically, so an error
leaves it as it was (issue 18). ``convlens weights pull`` names its files under ``[weights]`` through
:func:`add_weights_file` (issue 17). Only the command line calls this: no API route can add a model."""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import torch

from server.config import Settings
from server.engine.layers import ForwardFailedError, forward_locating_failure
from server.errors import ConflictError, InvalidInputError
from server.zoo.catalogue import catalogue_path, parse_catalogue, read_catalogue, spec_from_entry
from server.zoo.registry import list_specs

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")
_WEIGHTS_HEADER = re.compile(r"^[ \t]*\[[ \t]*weights[ \t]*\][ \t]*(#.*)?$", re.MULTILINE)


def toml_key(key: str) -> str:
    return key if _BARE_KEY.match(key) else json.dumps(key)


def toml_value(value: Any) -> str:
    """A TOML literal for the plain values a catalogue entry holds."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # JSON's escapes are TOML basic-string escapes
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    raise InvalidInputError(
        f"{value!r} cannot be written to the catalogue (use numbers, strings, lists, tables)."
    )


def entry_block(entry: dict[str, Any]) -> str:
    return "[[model]]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in entry.items())


def read_labels(path: Path) -> list[str]:
    if not path.is_file():
        raise InvalidInputError(f"labels file '{path}' does not exist (one class name per line).")
    labels = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not labels:
        raise InvalidInputError(f"labels file '{path}' names no classes (one class name per line).")
    return labels


def dry_run(entry: dict[str, Any], settings: Settings) -> int:
    """Build the entry's model, load its weights, run a forward on a random batch of 2 inputs of the
    declared size; returns the number of classes it outputs. Every failure is one readable line."""
    spec = spec_from_entry(entry, settings)
    model = spec.build()
    if "weights" in entry:
        loc = spec.locate_weights()
        if loc.status != "available":
            raise InvalidInputError(loc.message)
        spec.load_weights(model, loc)
    model.eval()
    size = spec.card.input_size
    x = torch.randn(2, *size, generator=torch.Generator().manual_seed(0))
    try:
        with torch.inference_mode():
            out = forward_locating_failure(model, x)
    except ForwardFailedError as exc:
        raise InvalidInputError(
            f"The forward on a random {'x'.join(map(str, size))} input failed {exc} "
            "(is --input-size what the model expects?)"
        ) from None
    if not isinstance(out, torch.Tensor) or out.ndim != 2 or out.shape[0] != 2:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise InvalidInputError(
            f"The model should return logits of shape (batch, classes); for a batch of 2 it returned {shape}."
        )
    classes = int(out.shape[1])
    labels = entry.get("labels")
    if labels is not None and len(labels) != classes:
        raise InvalidInputError(
            f"The model outputs {classes} classes but the labels file names {len(labels)}."
        )
    return classes


def add_model(entry: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Dry-run ``entry`` and append it to the catalogue; returns the entry as written."""
    path = catalogue_path(settings)
    text = path.read_text() if path.is_file() else ""
    existing = parse_catalogue(text, path)
    model_id = str(entry["id"])
    if model_id in {str(m.get("id")) for m in existing.models} or model_id in {
        s.card.id for s in list_specs()
    }:
        raise InvalidInputError(f"A model called '{model_id}' already exists: choose another --id.")
    entry = {**entry, "num_classes": dry_run(entry, settings)}
    write_catalogue(path, (text.rstrip("\n") + "\n\n" if text.strip() else "") + entry_block(entry))
    return entry


def weights_file_named(model_id: str, file_name: str, settings: Settings) -> bool:
    """Whether ``[weights]`` names ``file_name`` for ``model_id`` already; another file named for the same
    model is a ConflictError: the administrator's choice is not overwritten."""
    path = catalogue_path(settings)
    named = read_catalogue(path).weights.get(model_id)
    if named is not None and named != file_name:
        raise ConflictError(
            f"{path.name} already names '{named}' for '{model_id}' under [weights]; remove that line to "
            "use the official weights instead."
        )
    return named == file_name


def add_weights_file(model_id: str, file_name: str, settings: Settings) -> bool:
    """Name ``file_name`` under ``[weights]`` for the built-in model ``model_id`` (the rest of the catalogue,
    comments included, kept as written); False when it is named there already."""
    if weights_file_named(model_id, file_name, settings):
        return False
    path = catalogue_path(settings)
    text = path.read_text() if path.is_file() else ""
    line = f"{toml_key(model_id)} = {toml_value(file_name)}"
    header = _WEIGHTS_HEADER.search(text)
    if header is not None:
        new_text = f"{text[: header.end()]}\n{line}{text[header.end() :]}"
    else:
        new_text = (text.rstrip("\n") + "\n\n" if text.strip() else "") + f"[weights]\n{line}\n"
    if parse_catalogue(new_text, path).weights.get(model_id) != file_name:
        raise InvalidInputError(
            f"Could not add {line} under [weights] of {path.name} (is [weights] written in another form?): "
            "add it by hand."
        )
    write_catalogue(path, new_text)
    return True


def write_catalogue(path: Path, text: str) -> None:
    """Replace the catalogue by ``text`` atomically once it reads back; an error leaves the old file as it was."""
    parse_catalogue(text, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".catalogue-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def relative_to(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` when it lies inside it, else absolute (as the catalogue stores it)."""
    path = path.resolve()
    try:
        return str(path.relative_to(folder.resolve()))
    except ValueError:
        return str(path)
