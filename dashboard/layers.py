"""The layer list as the explore page uses it: grouped by block, and the conv layer behind any layer.

Pure functions over the API's ``GET /models/{id}/layers`` list (dicts with name, type, kind,
output_shape, channels, parent, depth).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

HIDDEN_KINDS = {"other"}  # Identity, Dropout, drop_path: nothing to look at


@dataclass
class LayerGroup:
    name: str
    shape: list[int] | None
    layers: list[dict[str, Any]] = field(default_factory=list)


def shape_text(shape: Sequence[int] | None) -> str:
    return "×".join(str(int(s)) for s in shape) if shape else "no tensor output"


def group_layers(layers: Sequence[dict[str, Any]]) -> list[LayerGroup]:
    """Group the API's flat layer list (``/layers``) by block, in model order.

    Each top-level module is a group; a top-level container whose children are blocks themselves
    (``blocks`` -> ``blocks.0``..) is split into one group per child block. Modules with no tensor
    output or nothing to show (Identity, Dropout) are left out.
    """
    visible = [
        layer for layer in layers if layer.get("output_shape") and layer.get("kind") not in HIDDEN_KINDS
    ]
    parents = {layer["parent"] for layer in layers if layer.get("parent")}

    def root(name: str) -> str:
        return name.split(".", 1)[0]

    # a top-level container is split when several of its direct children contain further modules
    split_roots: set[str] = set()
    for top in {root(layer["name"]) for layer in layers}:
        children = [layer["name"] for layer in layers if layer.get("parent") == top]
        if sum(1 for c in children if c in parents) >= 2:
            split_roots.add(top)

    def group_of(name: str) -> str:
        parts = name.split(".")
        return ".".join(parts[:2]) if parts[0] in split_roots and len(parts) > 1 else parts[0]

    groups: dict[str, LayerGroup] = {}
    by_name = {layer["name"]: layer for layer in layers}
    for layer in visible:
        if layer["name"] in split_roots:  # the container itself: shown as its last group's output
            continue
        key = group_of(layer["name"])
        if key not in groups:
            head = by_name.get(key)
            groups[key] = LayerGroup(key, head.get("output_shape") if head else None)
        groups[key].layers.append(layer)
    return list(groups.values())


def find_group(groups: Sequence[LayerGroup], layer: str | None) -> str | None:
    for g in groups:
        if any(item["name"] == layer for item in g.layers):
            return g.name
    return None


WEIGHTED_KINDS = {"conv", "linear"}


def weights_source_layer(layers: Sequence[dict[str, Any]], name: str) -> str | None:
    """The conv or linear layer whose filters produce ``name``'s channels, or None.

    A conv/linear layer is its own source. A block's source is the last weighted layer inside it with the
    same channel count; a norm, activation or pooling layer's is the last such layer before it.
    """
    names = [layer["name"] for layer in layers]
    if name not in names:
        return None
    pos = names.index(name)
    target = layers[pos]
    if target.get("kind") in WEIGHTED_KINDS:
        return name
    inside = [layer for layer in layers[pos + 1 :] if layer["name"].startswith(name + ".")]
    pool = inside or layers[:pos]
    for layer in reversed(pool):
        if layer.get("kind") in WEIGHTED_KINDS and layer.get("channels") == target.get("channels"):
            return layer["name"]
    return None
