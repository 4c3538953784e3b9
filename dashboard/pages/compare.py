"""Compare: two models, or two checkpoints of one model, on the same image; the filters that changed most,
and the CKA map of which layer of one model corresponds to which of the other."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from dashboard.components.common import panel, placeholder_graph, radio
from dashboard.views.compare import CKA_IMAGES, MODES

dash.register_page(__name__, path="/compare", name="Compare", title="ConvLens · Compare", order=3)


def side_controls(which: str) -> html.Div:
    return html.Div(
        [
            html.Strong(which.upper(), className="cl-compare-side-name"),
            html.Label("Model", htmlFor=f"compare-model-{which}"),
            dcc.Dropdown(id=f"compare-model-{which}", clearable=False),
            html.Label("Weights", htmlFor=f"compare-checkpoint-{which}"),
            dcc.Dropdown(id=f"compare-checkpoint-{which}", clearable=False),
            html.Label("Layer", htmlFor=f"compare-layer-{which}"),
            dcc.Dropdown(id=f"compare-layer-{which}", clearable=False),
        ],
        className="cl-compare-controls",
    )


def layout(**query: Any) -> html.Div:
    """Query parameter ``mode`` (checkpoints or models) picks the preset."""
    return html.Div(
        [
            dcc.Store(id="compare-initial", data={"mode": query.get("mode")}),
            dcc.Store(id="compare-cka-job"),
            dcc.Interval(id="compare-cka-poll", interval=500, disabled=True),
            panel(
                "Compare",
                html.Div(
                    [
                        radio("compare-mode", MODES, "checkpoints", "cl-compare-mode"),
                        html.Div(id="compare-note"),
                        side_controls("a"),
                        side_controls("b"),
                        html.Div(
                            [
                                html.Label("Image", htmlFor="compare-image"),
                                dcc.Dropdown(id="compare-image", clearable=False),
                                dcc.Upload(
                                    html.Span("or drop an image here"),
                                    id="compare-upload",
                                    className="cl-compare-upload",
                                    multiple=False,
                                ),
                                html.Button(
                                    "Compare", id="compare-run", n_clicks=0, className="cl-btn cl-btn-primary"
                                ),
                                html.Div(id="compare-upload-status", className="cl-caption", role="status"),
                            ],
                            className="cl-compare-row",
                        ),
                        html.Div(id="compare-error"),
                    ]
                ),
                panel_id="panel-compare-controls",
            ),
            dcc.Loading(
                html.Div(
                    [
                        html.Div(id="compare-side-a", children="Press Compare.", className="cl-panel"),
                        html.Div(id="compare-side-b", className="cl-panel"),
                    ],
                    className="cl-compare-sides",
                ),
                type="dot",
            ),
            panel(
                "Filters that changed most",
                html.Div(id="compare-changed", children="Compare two checkpoints of one model."),
                panel_id="panel-compare-changed",
            ),
            panel(
                "Which layer of A is which of B (linear CKA over a dataset)",
                html.Div(
                    [
                        html.Div(
                            [
                                html.Label("Dataset", htmlFor="compare-dataset"),
                                dcc.Dropdown(id="compare-dataset", clearable=False),
                                html.Label("Images", htmlFor="compare-cka-images"),
                                dcc.Input(
                                    id="compare-cka-images",
                                    type="number",
                                    min=2,
                                    max=512,
                                    step=1,
                                    value=CKA_IMAGES,
                                ),
                                html.Button(
                                    "Compare layers", id="compare-cka-run", n_clicks=0, className="cl-btn"
                                ),
                            ],
                            className="cl-compare-row",
                        ),
                        html.Div(id="compare-cka-status", className="cl-caption", role="status"),
                        placeholder_graph(
                            "compare-cka-graph", "Pick a dataset, then Compare layers.", height=360
                        ),
                        html.Div(id="compare-cka-best"),
                    ]
                ),
                panel_id="panel-compare-cka",
            ),
        ],
        className="cl-page cl-compare",
    )
