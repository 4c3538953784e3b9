"""The layer browser: the model's layers grouped by block, each with its output shape.

Items carry ``data-layer``; clicks reach Dash through one delegated listener (static/explore.js sets the
``layer-click`` store) instead of a pattern-matching input over every item, which kept the browser busy
for seconds on models with hundreds of layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import html

from dashboard.layers import LayerGroup, find_group, shape_text


def layer_item(layer: dict[str, Any], group: str, selected: bool) -> html.Button:
    rel_depth = layer["name"].count(".") - group.count(".")
    return html.Button(
        [
            html.Span(layer["name"], className="cl-layer-name"),
            html.Span(layer.get("type", ""), className="cl-layer-type"),
            html.Span(shape_text(layer.get("output_shape")), className="cl-layer-shape"),
        ],
        className=f"cl-layer-item cl-kind-{layer.get('kind', 'other')}"
        + (" is-selected" if selected else ""),
        style={"paddingLeft": f"{6 + 10 * max(0, rel_depth)}px"},
        title=f"{layer['name']} ({layer.get('type', '')}, {layer.get('kind', '')})",
        **{"data-layer": layer["name"]},
    )


def layer_browser(groups: Sequence[LayerGroup], selected: str | None) -> html.Div:
    open_group = find_group(groups, selected)
    return html.Div(
        [
            html.Details(
                [
                    html.Summary(
                        [
                            html.Span(g.name, className="cl-group-name"),
                            html.Span(shape_text(g.shape), className="cl-layer-shape"),
                        ]
                    ),
                    html.Div([layer_item(layer, g.name, layer["name"] == selected) for layer in g.layers]),
                ],
                open=g.name == open_group,
                className="cl-layer-group",
            )
            for g in groups
        ],
        className="cl-layer-browser",
    )
