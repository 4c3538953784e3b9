"""Audit: dead, saturated, near-constant and redundant filters of a model on a dataset; checkpoints."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from dashboard.components.common import panel, placeholder_graph

dash.register_page(__name__, path="/audit", name="Audit", title="ConvLens · Audit", order=4)


def controls() -> html.Section:
    return panel(
        "Audit a model",
        html.Div(
            [
                html.Div(
                    [
                        html.Label("Model", htmlFor="audit-model"),
                        dcc.Dropdown(id="audit-model", clearable=False),
                        html.Label("Dataset", htmlFor="audit-dataset"),
                        dcc.Dropdown(id="audit-dataset", clearable=False),
                        html.Label("Fail on (gates)", htmlFor="audit-fail-on"),
                        dcc.Input(id="audit-fail-on", type="text", placeholder="e.g. dead>5%", debounce=True),
                        dcc.Checklist(
                            id="audit-what-if",
                            options=[
                                {"label": " what-if: zero the flagged filters (labelled data)", "value": "on"}
                            ],
                            value=[],
                        ),
                        html.Button(
                            "Run audit", id="audit-run", n_clicks=0, className="cl-btn cl-btn-primary"
                        ),
                    ],
                    className="cl-audit-controls",
                ),
                html.Details(
                    [html.Summary("Thresholds (all in [0, 1])"), html.Div(id="audit-thresholds")],
                    className="cl-audit-thresholds",
                ),
                html.Div(id="audit-status", className="cl-caption", role="status"),
                html.Div(id="audit-error"),
            ]
        ),
        panel_id="panel-audit-controls",
    )


def layout(**query: Any) -> html.Div:
    """Query parameters ``model`` and ``dataset`` preselect the pickers."""
    return html.Div(
        [
            dcc.Store(id="audit-initial", data={k: query.get(k) for k in ("model", "dataset")}),
            dcc.Store(id="audit-job"),
            dcc.Store(id="audit-report"),
            dcc.Store(id="audit-selected"),
            dcc.Store(id="audit-cmp-job"),
            dcc.Interval(id="audit-poll", interval=500, disabled=True),
            dcc.Interval(id="audit-cmp-poll", interval=500, disabled=True),
            controls(),
            panel(
                "Summary",
                html.Div(id="audit-summary", children="Run an audit to see its findings."),
                panel_id="panel-audit-summary",
            ),
            html.Div(
                [
                    panel(
                        "Filter correlations (ordered by cluster)",
                        html.Div(
                            [
                                dcc.Dropdown(id="audit-layer", placeholder="layer", clearable=False),
                                dcc.Loading(
                                    placeholder_graph(
                                        "audit-heatmap",
                                        "Run an audit, then pick a layer.",
                                        height=200,
                                        style={"height": "540px"},
                                    ),
                                    type="dot",
                                ),
                            ]
                        ),
                        panel_id="panel-audit-heatmap",
                    ),
                    panel(
                        "Filter",
                        html.Div(id="audit-detail", children="Click a flagged filter or a heat-map cell."),
                        panel_id="panel-audit-detail",
                    ),
                ],
                className="cl-audit-grid",
            ),
            panel("Flagged filters", html.Div(id="audit-flags"), panel_id="panel-audit-flags"),
            html.Div(
                [
                    panel(
                        "Sparsity",
                        html.Div(
                            [
                                placeholder_graph(
                                    "audit-sparsity", "Run an audit.", height=300, style={"height": "320px"}
                                ),
                                placeholder_graph(
                                    "audit-sparsity-filters",
                                    "Pick a layer.",
                                    height=280,
                                    style={"height": "300px"},
                                ),
                            ]
                        ),
                        panel_id="panel-audit-sparsity",
                    ),
                    panel(
                        "Blocking artifacts (checkerboard)",
                        html.Div(id="audit-checkerboard", children="Run an audit."),
                        panel_id="panel-audit-checkerboard",
                    ),
                ],
                className="cl-audit-grid",
            ),
            html.Div(
                [
                    panel(
                        "Separability",
                        placeholder_graph(
                            "audit-separability",
                            "Run an audit on labelled data.",
                            height=300,
                            style={"height": "320px"},
                        ),
                    ),
                    panel(
                        "Layer similarity",
                        placeholder_graph(
                            "audit-cka",
                            "Run an audit.",
                            height=300,
                            style={"height": "440px"},
                        ),
                    ),
                ],
                className="cl-audit-grid",
            ),
            panel(
                "Checkpoints: weight updates",
                html.Div(
                    [
                        dcc.Checklist(id="audit-checkpoints", options=[], value=[], inline=True),
                        html.Button("Compare", id="audit-compare", n_clicks=0, className="cl-btn"),
                        html.Div(id="audit-cmp-status", className="cl-caption", role="status"),
                        placeholder_graph(
                            "audit-cmp-graph",
                            "Pick two or more checkpoints.",
                            height=300,
                            style={"height": "340px"},
                        ),
                    ]
                ),
                panel_id="panel-audit-checkpoints",
            ),
        ],
        className="cl-page cl-audit",
    )
