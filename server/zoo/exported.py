"""``torch.export`` archives (``.pt2``): checked before loading, loaded with ``torch.export.load``, and
unflattened into the module hierarchy the export kept, so that layers are addressed by their original
dotted names and the one hook mechanism sees every one of them (see docs/SECURITY.md).

``torch.export.load`` itself unpickles the archive's tensor payloads with ``weights_only=False``, loads
custom objects with TorchScript's unpickler and plain ``pickle``, and may load compiled AOTInductor
libraries. ConvLens therefore opens the archive first and refuses it unless every member is one of: the
archive's own text files (format, version, JSON graphs and configs, extra files), a raw tensor payload
that its config names, or a pickle that ``torch.load(weights_only=True)`` accepts; custom objects,
shared libraries and anything else are refused. After loading, the graph may call only ATen / prims
operators (and ``operator.getitem``): a custom operator is refused by name.
"""

from __future__ import annotations

import io
import json
import operator
import zipfile
from pathlib import Path

import torch
from torch import nn

from server.errors import InvalidInputError, UnsafeCheckpointError

ALLOWED_NAMESPACES = ("aten", "prims")
_TEXT_MEMBERS = ("archive_format", "archive_version", "byteorder", ".data/version", ".data/serialization_id")


def _refuse(path: Path, why: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(f"Refused to load '{path.name}': {why} (see docs/SECURITY.md).")


def _raw_payloads(zf: zipfile.ZipFile, prefix: str) -> set[str]:
    """Members holding raw (unpickled) tensor bytes, as the archive's weight and constant configs name them."""
    raw: set[str] = set()
    for name in zf.namelist():
        rel = name[len(prefix) :]
        for folder in ("data/weights/", "data/constants/"):
            if rel.startswith(folder) and rel.endswith("_config.json"):
                config = json.loads(zf.read(name)).get("config", {})
                for meta in config.values():
                    if not meta.get("use_pickle", False):
                        raw.add(prefix + folder + meta["path_name"])
    return raw


def check_archive(path: Path) -> None:
    """Refuse a ``.pt2`` archive unless loading it can only rebuild tensors (see the module docstring)."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise InvalidInputError(f"'{path.name}' is not a torch.export archive (.pt2): {exc}") from None
    with zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
        fmt = next((n for n in names if n.endswith("/archive_format") or n == "archive_format"), None)
        if fmt is None or zf.read(fmt).strip() != b"pt2":
            raise InvalidInputError(f"'{path.name}' is not a torch.export archive (no archive_format 'pt2').")
        prefix = fmt[: -len("archive_format")]
        try:
            raw = _raw_payloads(zf, prefix)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidInputError(f"'{path.name}' has an unreadable payload config: {exc}") from None
        for name in names:
            rel = name[len(prefix) :] if name.startswith(prefix) else name
            if rel in _TEXT_MEMBERS or rel.startswith("extra/") or (rel.endswith(".json") and "/" in rel):
                continue  # text read by the loader, never executed
            if name in raw:
                continue
            base = rel.rpartition("/")[2]
            if base.startswith(("custom_obj", "opaque_obj")):
                raise _refuse(path, f"it holds a custom object ('{rel}'), which loading would unpickle")
            if rel.endswith((".so", ".dll", ".dylib", ".cpp", ".py", ".pyc")) or "aotinductor" in rel:
                raise _refuse(path, f"it holds compiled or source code ('{rel}')")
            try:
                torch.load(io.BytesIO(zf.read(name)), map_location="cpu", weights_only=True)
            except Exception as exc:
                raise _refuse(
                    path, f"its member '{rel}' needs more than tensors to unpickle ({type(exc).__name__})"
                ) from None


def check_operators(ep: torch.export.ExportedProgram, name: str) -> None:
    """Refuse a graph that calls anything but ATen / prims operators (custom ops, torchbind, HOPs)."""
    for node in ep.graph.nodes:
        if node.op != "call_function" or node.target is operator.getitem:
            continue
        target = node.target
        namespace = getattr(target, "namespace", None)
        if not isinstance(target, torch._ops.OpOverload) or namespace not in ALLOWED_NAMESPACES:
            raise UnsafeCheckpointError(
                f"Refused to load '{name}': its graph calls '{target}', which is not an ATen or prims "
                "operator (see docs/SECURITY.md)."
            )


def original_types(ep: torch.export.ExportedProgram) -> dict[str, str]:
    """Dotted module name -> the class name it had before export (from the graph's ``nn_module_stack``)."""
    out: dict[str, str] = {}
    for node in ep.graph.nodes:
        for fqn, type_path in (node.meta.get("nn_module_stack") or {}).values():
            fqn = fqn.partition("@")[0]
            if fqn and fqn not in out:
                out[fqn] = str(type_path).rpartition(".")[2]
    return out


def load_exported(path: Path) -> nn.Module:
    """A checked ``.pt2`` archive as a module with the export's hierarchy; each submodule carries the class
    name it had before export in ``original_type`` (see :func:`server.engine.layers.module_type`)."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"torch.export archive '{path.name}' does not exist.")
    check_archive(path)
    try:
        ep = torch.export.load(str(path))
    except Exception as exc:
        raise InvalidInputError(f"'{path.name}' could not be loaded by torch.export.load: {exc}") from None
    check_operators(ep, path.name)
    try:
        module = torch.export.unflatten(ep)
    except Exception as exc:
        raise InvalidInputError(f"'{path.name}' could not be unflattened into its modules: {exc}") from None
    types = original_types(ep)
    for fqn, sub in module.named_modules():
        if fqn in types:
            sub.original_type = types[fqn]
    module.original_type = "ExportedProgram"
    return module
