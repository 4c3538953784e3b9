"""Recurrent: RNN, LSTM and GRU reading a digit pixel by pixel, their gradient flow, gates and hidden states."""

from __future__ import annotations

from typing import Any

import dash
from dash import dcc, html

from dashboard.components.common import panel, placeholder_graph, radio
from dashboard.views.recurrent import COLOR_BY, TRAINED, TRAINED_OPTION

dash.register_page(__name__, path="/recurrent", name="Recurrent", title="ConvLens · Recurrent", order=6)


def _digit(query: dict[str, Any]) -> int | None:
    try:
        return int(query.get("digit", 0))
    except (TypeError, ValueError):
        return None


def layout(**query: Any) -> html.Div:
    """Query parameters ``model`` and ``digit`` (an index into the digits dataset) preselect the pickers."""
    return html.Div(
        [
            dcc.Store(id="rec-initial", data={"model": query.get("model")}),
            dcc.Store(id="rec-cards"),
            html.H2("Recurrent networks: RNN, LSTM and GRU"),
            html.P(
                "Three one-layer networks of 64 units read each 8x8 digit as a sequence of 64 pixels, the most "
                "informative first: the answer needs what the early steps saw."
            ),
            html.Div(id="rec-models-error"),
            panel(
                "Model and digit",
                html.Div(
                    [
                        html.Div(
                            [
                                html.Label("Model", htmlFor="rec-model"),
                                dcc.RadioItems(id="rec-model", options=[], className="cl-rec-models"),
                                html.Label("Digit (index into the digits dataset)", htmlFor="rec-digit"),
                                dcc.Input(
                                    id="rec-digit", type="number", value=_digit(query), debounce=True, step=1
                                ),
                                html.Div(id="rec-digit-image"),
                                html.Div(id="rec-caption"),
                            ],
                            className="cl-rec-pick",
                        ),
                        html.Div(
                            [html.Div(id="rec-accuracy"), html.Div(id="rec-links")], className="cl-rec-about"
                        ),
                    ],
                    className="cl-rec-top",
                ),
            ),
            panel(
                "The digit step by step: hidden units, gates and cell state against time",
                html.Div(
                    [
                        html.Div(id="rec-sequence-error"),
                        placeholder_graph("rec-states", "loading...", height=400),
                        placeholder_graph("rec-prediction", "loading...", height=300),
                    ]
                ),
            ),
            panel(
                "Gradient flow: does the gradient reach the early steps?",
                html.Div(
                    [
                        html.Div(id="rec-flow-error"),
                        html.Div(
                            [
                                html.Label("The three models", htmlFor="rec-flow-snapshot"),
                                dcc.Dropdown(
                                    id="rec-flow-snapshot",
                                    options=[TRAINED_OPTION],
                                    value=TRAINED,
                                    clearable=False,
                                    style={"minWidth": "12rem"},
                                ),
                                html.Label(
                                    "The exploding RNN: clip each step's gradient to norm", htmlFor="rec-clip"
                                ),
                                dcc.Input(id="rec-clip", type="number", value=1, debounce=True, step="any"),
                            ],
                            className="cl-rec-clip",
                        ),
                        html.Div(id="rec-exploding-error"),
                        html.Div(
                            [
                                placeholder_graph("rec-flow", "computing the gradient flow...", height=320),
                                placeholder_graph("rec-exploding", "computing...", height=320),
                            ],
                            className="cl-rec-pair",
                        ),
                    ]
                ),
            ),
            panel(
                "Gates over the whole dataset: saturation and the forget gate",
                html.Div(
                    [
                        html.Div(id="rec-gates-info"),
                        html.Div(
                            [
                                placeholder_graph("rec-saturation", "loading...", height=360),
                                placeholder_graph("rec-forget", "loading...", height=360),
                            ],
                            className="cl-rec-pair",
                        ),
                    ]
                ),
            ),
            panel(
                "Hidden states projected (PCA)",
                html.Div(
                    [
                        html.Div(
                            [
                                html.Span("Colour by "),
                                radio("rec-color", list(COLOR_BY), "time", "cl-rec-color"),
                            ]
                        ),
                        html.Div(id="rec-projection-error"),
                        placeholder_graph("rec-projection", "loading...", height=420),
                    ]
                ),
            ),
        ],
        className="cl-page cl-recurrent",
    )
