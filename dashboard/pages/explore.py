"""Explore: pick a model and an image, browse every layer's filters, open one filter in detail."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from dashboard.components.common import panel, placeholder_graph
from dashboard.components.filter_detail import detail_panel
from dashboard.components.filter_grid import SORT_OPTIONS
from dashboard.components.image_input import image_input
from dashboard.images import gallery, latent_seed
from dashboard.state import ExploreState

dash.register_page(__name__, path="/", name="Explore", title="ConvLens · Explore", order=0)


def predictions_panel() -> html.Section:
    """The input as the model sees it, the top-1 class and the top-5 bar chart, side by side."""
    return panel(
        "Predictions",
        dcc.Loading(
            html.Div(
                [
                    html.Div(
                        [
                            html.Img(id="input-preview", className="cl-input-preview", alt=""),
                            # the camera's live frames are drawn into the `camera-*` elements, which no
                            # callback writes (static/camera.js, dashboard/views/camera.py)
                            html.Img(id="camera-preview", className="cl-input-preview cl-live-only", alt=""),
                            html.Div(
                                [
                                    html.Div(id="top1", className="cl-top1"),
                                    html.Div(id="camera-top1", className="cl-top1 cl-live-only"),
                                    html.Div(id="input-caption", className="cl-caption"),
                                    html.Div(id="predictions-error"),
                                ]
                            ),
                        ],
                        className="cl-input-box",
                    ),
                    placeholder_graph(
                        "predictions-graph",
                        "Pick a sample or drop an image.",
                        height=120,
                        className="cl-predictions-graph",
                    ),
                ],
                className="cl-predictions",
            ),
            type="dot",
            delay_show=200,
            id="predictions-loading",  # hidden while the camera runs (static/camera.js)
        ),
        panel_id="panel-predictions",
    )


def layout(**query: Any) -> html.Div:
    """Query parameters (model, image, layer, filter, untrained) restore a copied view."""
    state = ExploreState.from_query(query)
    return html.Div(
        [
            dcc.Store(id="explore-initial", data=state.to_dict()),
            dcc.Store(id="image-id", data=state.image),
            dcc.Store(id="selected-layer", data=state.layer),
            dcc.Store(id="selected-filter", data={"layer": state.layer, "index": state.filter}),
            dcc.Store(id="layers-data"),
            dcc.Store(id="weights-pull-job"),  # {"job_id", "model"} of a running weight pull
            dcc.Store(id="weights-pulled"),  # set when a pull succeeds: the card and layers are shown again
            dcc.Interval(id="weights-pull-poll", interval=300, disabled=True),
            dcc.Store(id="activations-data"),
            dcc.Store(id="layer-click"),  # {"layer", "at"}, set by static/explore.js on a layer click
            dcc.Store(id="tile-click"),  # {"index", "at"}, set by static/explore.js on a tile click
            dcc.Store(id="explore-query"),
            dcc.Store(id="explore-url-synced"),
            html.Div(
                [
                    panel(
                        "Model",
                        html.Div(
                            [
                                dcc.Dropdown(
                                    id="model-picker", clearable=False, placeholder="Loading models…"
                                ),
                                dcc.Checklist(
                                    id="untrained-toggle",
                                    options=[{"label": " random weights (untrained)", "value": "untrained"}],
                                    value=["untrained"] if state.untrained else [],
                                    className="cl-check",
                                ),
                                dcc.Checklist(
                                    id="precision-toggle",
                                    options=[{"label": " fast precision (bf16)", "value": "fast"}],
                                    value=[],
                                    className="cl-check",
                                ),
                                html.Div(id="model-error"),
                                dcc.Loading(html.Div(id="model-card"), type="dot", delay_show=200),
                                html.Div(id="weights-pull-status", role="status"),
                            ]
                        ),
                        panel_id="panel-model",
                    ),
                    panel(
                        "Image",
                        html.Div(
                            [
                                image_input(gallery(), latent_seed(state.image)),
                            ]
                        ),
                        panel_id="panel-image",
                    ),
                ],
                className="cl-col cl-col-left",
            ),
            html.Div(
                panel(
                    "Layers",
                    dcc.Loading(html.Div(id="layer-browser"), type="dot", delay_show=200),
                    panel_id="panel-layers",
                ),
                className="cl-col cl-col-layers",
            ),
            html.Div(
                [
                    predictions_panel(),
                    panel(
                        "Filters",
                        html.Div(
                            [
                                html.Div(
                                    [
                                        html.Label("Sort by", htmlFor="grid-sort", className="cl-label"),
                                        dcc.RadioItems(
                                            id="grid-sort",
                                            options=SORT_OPTIONS,
                                            value="index",
                                            inline=True,
                                            className="cl-radio",
                                        ),
                                        html.Span(
                                            [
                                                html.Span(className="cl-legend-silent"),
                                                "silent: never above 0",
                                            ],
                                            className="cl-legend",
                                        ),
                                    ],
                                    className="cl-grid-controls",
                                ),
                                html.Div(id="grid-summary", className="cl-caption"),
                                html.Div(id="camera-grid-summary", className="cl-caption cl-live-grid-only"),
                                dcc.Loading(  # spins while the activations are computed and the grid drawn
                                    [
                                        html.Div(id="grid-error"),
                                        html.Div(id="filter-grid", className="cl-grid-box"),
                                        html.Div(id="camera-grid", className="cl-grid-box cl-live-grid-only"),
                                    ],
                                    type="default",
                                    delay_show=150,
                                    id="grid-loading",  # hidden while the camera runs (static/camera.js)
                                    overlay_style={"visibility": "visible", "opacity": 0.4},
                                ),
                                html.Div(id="grid-timing", className="cl-timing"),
                            ]
                        ),
                        panel_id="panel-filters",
                    ),
                ],
                className="cl-col cl-col-main",
            ),
            detail_panel(),
        ],
        className="cl-explore",
    )
