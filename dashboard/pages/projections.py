"""Projections: how a layer arranges a whole dataset (t-SNE with live perplexity and epsilon, PCA, ...)."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from dashboard.components.common import panel
from dashboard.components.projection import EPSILON_MAX, EPSILON_MIN, slider_from_epsilon
from dashboard.figures import message_figure

dash.register_page(__name__, path="/projections", name="Projections", title="ConvLens · Projections", order=2)

METHOD_OPTIONS = [
    {"label": "t-SNE", "value": "tsne"},
    {"label": "PCA", "value": "pca"},
    {"label": "Kernel PCA", "value": "kpca"},
    {"label": "Isomap", "value": "isomap"},
    {"label": "Sammon's mapping", "value": "sammon"},
    {"label": "UMAP", "value": "umap"},
]
COLOR_OPTIONS = [
    {"label": "true label", "value": "label"},
    {"label": "predicted class", "value": "predicted"},
    {"label": "filter activation", "value": "filter"},
]
GRAPH_CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": True}


def _labelled(label: str, control: Any, control_id: str) -> html.Div:
    return html.Div(
        [html.Label(label, htmlFor=control_id, className="cl-label"), control], className="cl-param"
    )


def layout(**query: Any) -> html.Div:
    """Query parameters ``dataset``, ``model`` and ``layer`` preselect the pickers."""
    return html.Div(
        [
            dcc.Store(id="proj-initial", data={k: query.get(k) for k in ("dataset", "model", "layer")}),
            dcc.Store(id="proj-methods"),
            dcc.Store(id="proj-job"),
            dcc.Store(id="proj-coords"),
            dcc.Store(id="proj-points"),
            dcc.Store(id="proj-result"),
            dcc.Store(id="proj-activation"),
            dcc.Interval(id="proj-poll", interval=300, disabled=True),
            dcc.Location(id="proj-nav", refresh="callback-nav"),
            dcc.Download(id="proj-download"),
            html.Div(
                [
                    panel(
                        "Data",
                        html.Div(
                            [
                                _labelled(
                                    "dataset",
                                    dcc.Dropdown(
                                        id="proj-dataset", clearable=False, placeholder="Loading datasets…"
                                    ),
                                    "proj-dataset",
                                ),
                                html.Div(id="proj-dataset-info", className="cl-caption"),
                                dcc.Input(
                                    id="proj-upload-name",
                                    placeholder="name for an upload",
                                    className="cl-input",
                                    debounce=True,
                                ),
                                dcc.Upload(
                                    id="proj-upload",
                                    children=html.Div("Drop a .zip (one folder per class) or images here"),
                                    multiple=True,
                                    className="cl-upload",
                                ),
                                html.Div(id="proj-upload-msg"),
                                _labelled(
                                    "model",
                                    dcc.Dropdown(
                                        id="proj-model", clearable=False, placeholder="Loading models…"
                                    ),
                                    "proj-model",
                                ),
                                _labelled(
                                    "layer", dcc.Dropdown(id="proj-layer", clearable=False), "proj-layer"
                                ),
                                _labelled(
                                    "pooling",
                                    dcc.RadioItems(
                                        id="proj-pool",
                                        options=[
                                            {"label": f" {p}", "value": p} for p in ("mean", "max", "flatten")
                                        ],
                                        value="mean",
                                        inline=True,
                                    ),
                                    "proj-pool",
                                ),
                            ]
                        ),
                        panel_id="panel-proj-data",
                    ),
                    panel(
                        "Method",
                        html.Div(
                            [
                                dcc.Dropdown(
                                    id="proj-method", options=METHOD_OPTIONS, value="tsne", clearable=False
                                ),
                                html.Div(
                                    [
                                        html.Label(
                                            "perplexity", htmlFor="proj-perplexity", className="cl-label"
                                        ),
                                        dcc.Slider(
                                            id="proj-perplexity",
                                            min=2,
                                            max=100,
                                            step=1,
                                            value=30,
                                            marks={2: "2", 30: "30", 50: "50", 100: "100"},
                                            tooltip={"placement": "bottom", "always_visible": False},
                                        ),
                                        html.Label(
                                            "epsilon (learning rate)",
                                            htmlFor="proj-epsilon",
                                            className="cl-label",
                                        ),
                                        dcc.Slider(
                                            id="proj-epsilon",
                                            min=EPSILON_MIN,
                                            max=EPSILON_MAX,
                                            step=0.05,
                                            value=slider_from_epsilon(200.0),
                                            marks={1: "10", 2: "100", 3: "1000"},
                                        ),
                                        html.Div(id="proj-epsilon-value", className="cl-caption"),
                                    ],
                                    id="proj-tsne-sliders",
                                ),
                                html.Div(id="proj-params"),
                                html.Details(
                                    [
                                        html.Summary("Cautions (t-SNE and its cousins)"),
                                        html.Div(id="proj-guidance", className="cl-caption"),
                                        html.Label(
                                            "seeds (2 to 5)", htmlFor="proj-seeds", className="cl-label"
                                        ),
                                        dcc.Input(
                                            id="proj-seeds",
                                            type="text",
                                            placeholder="e.g. 0, 1, 2",
                                            className="cl-input",
                                        ),
                                        dcc.Checklist(
                                            id="proj-baseline",
                                            options=[{"label": " noise baseline", "value": "noise"}],
                                            value=[],
                                        ),
                                        html.Label(
                                            "perplexity sweep",
                                            htmlFor="proj-perplexities",
                                            className="cl-label",
                                        ),
                                        dcc.Input(
                                            id="proj-perplexities",
                                            type="text",
                                            placeholder="e.g. 5, 30, 100",
                                            className="cl-input",
                                        ),
                                    ],
                                    id="proj-cautions-form",
                                    open=True,
                                ),
                                html.Button("Run", id="proj-run", className="cl-button", n_clicks=0),
                                html.Button(
                                    "Stop",
                                    id="proj-stop",
                                    className="cl-button cl-button-secondary",
                                    n_clicks=0,
                                ),
                                html.Div(id="proj-error"),
                            ]
                        ),
                        panel_id="panel-proj-method",
                    ),
                ],
                className="cl-col cl-col-left",
            ),
            html.Div(
                panel(
                    "Projection",
                    html.Div(
                        [
                            html.Div(
                                [
                                    html.Span("colour by", className="cl-label"),
                                    dcc.RadioItems(
                                        id="proj-color", options=COLOR_OPTIONS, value="label", inline=True
                                    ),
                                    dcc.Input(
                                        id="proj-filter",
                                        type="number",
                                        min=0,
                                        step=1,
                                        value=0,
                                        debounce=True,
                                        className="cl-input cl-input-small",
                                        placeholder="filter",
                                    ),
                                ],
                                className="cl-grid-controls",
                            ),
                            html.Div(id="proj-status", className="cl-caption"),
                            dcc.Graph(
                                id="proj-scatter",
                                figure=message_figure(
                                    "Pick a dataset, a layer and a method, then Run.", height=560
                                ),
                                config=GRAPH_CONFIG,
                                clear_on_unhover=True,
                            ),
                            html.Div(
                                [
                                    html.Button(
                                        "CSV", id="proj-export-csv", className="cl-button cl-button-secondary"
                                    ),
                                    html.Button(
                                        "PNG", id="proj-export-png", className="cl-button cl-button-secondary"
                                    ),
                                    html.Button(
                                        "SVG", id="proj-export-svg", className="cl-button cl-button-secondary"
                                    ),
                                ],
                                className="cl-export",
                            ),
                        ]
                    ),
                    panel_id="panel-proj-scatter",
                ),
                className="cl-col",
            ),
            html.Div(
                [
                    panel(
                        "Point",
                        html.Div(id="proj-hover", children=html.Div("Hover a point.", className="cl-notice")),
                        panel_id="panel-proj-hover",
                    ),
                    panel(
                        "Class purity",
                        html.Div(
                            id="proj-purity",
                            children=html.Div("Shown when a run finishes.", className="cl-notice"),
                        ),
                        panel_id="panel-proj-purity",
                    ),
                ],
                className="cl-col",
            ),
            html.Div(
                panel(
                    "Cautions: what the lecture warns about t-SNE, measured on this run",
                    html.Div(
                        id="proj-cautions",
                        children=html.Div(
                            "Give seeds, the noise baseline or a perplexity sweep, then Run.",
                            className="cl-notice",
                        ),
                    ),
                    panel_id="panel-proj-cautions",
                ),
                className="cl-proj-cautions",
            ),
        ],
        className="cl-projections",
    )
