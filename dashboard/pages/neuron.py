"""The neuron page: one filter of one layer of one model, at a shareable address
``/neuron/<model>/<layer>/<channel>[?dataset=<id>]`` (not in the navigation bar: Explore and Audit link to it)."""

from __future__ import annotations

import dash
from dash import dcc, html

from dashboard.components.neuron import neuron_sections

dash.register_page(
    __name__,
    path_template="/neuron/<model>/<layer>/<channel>",
    name="Neuron",
    title="ConvLens · Neuron",
    order=90,
)


def layout(
    model: str | None = None, layer: str | None = None, channel: str | None = None, **query: str
) -> html.Div:
    target = {"model": model, "layer": layer, "channel": channel, "dataset": query.get("dataset")}
    return html.Div(
        [
            dcc.Store(id="neuron-target", data=target),
            dcc.Store(id="neuron-checked"),
            html.H2(id="neuron-title", className="cl-neuron-title"),
            html.Div(id="neuron-nav"),
            html.Div(id="neuron-error"),
            neuron_sections(),
        ],
        className="cl-page cl-neuron",
    )
