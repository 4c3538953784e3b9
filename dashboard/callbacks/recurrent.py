"""Wiring of the recurrent page: each callback returns what a function of ``dashboard.views.recurrent`` computes."""

from __future__ import annotations

from dash import Input, Output, callback

from dashboard.views import recurrent as view


@callback(
    Output("rec-model", "options"),
    Output("rec-model", "value"),
    Output("rec-cards", "data"),
    Output("rec-accuracy", "children"),
    Output("rec-models-error", "children"),
    Input("rec-initial", "data"),
)
def on_load(initial):
    return view.load_models((initial or {}).get("model"))


@callback(Output("rec-links", "children"), Input("rec-model", "value"))
def on_links(model):
    return view.links(model)


@callback(
    Output("rec-digit-image", "children"),
    Output("rec-states", "figure"),
    Output("rec-prediction", "figure"),
    Output("rec-caption", "children"),
    Output("rec-sequence-error", "children"),
    Input("rec-model", "value"),
    Input("rec-digit", "value"),
    Input("rec-cards", "data"),
)
def on_sequence(model, digit, cards):
    return view.sequence(model, digit, ((cards or {}).get(model) or {}).get("labels"))


@callback(
    Output("rec-saturation", "figure"),
    Output("rec-forget", "figure"),
    Output("rec-gates-info", "children"),
    Input("rec-model", "value"),
    Input("rec-cards", "data"),
)
def on_gates(model, cards):
    return view.gates(model, cards)


@callback(Output("rec-flow-snapshot", "options"), Input("rec-cards", "data"))
def on_flow_snapshots(cards):
    return view.flow_snapshots(cards)


@callback(
    Output("rec-flow", "figure"),
    Output("rec-flow-error", "children"),
    Input("rec-cards", "data"),
    Input("rec-flow-snapshot", "value"),
)
def on_flow(cards, snapshot):
    return view.gradient_flow(cards, snapshot)


@callback(
    Output("rec-exploding", "figure"), Output("rec-exploding-error", "children"), Input("rec-clip", "value")
)
def on_exploding(clip):
    return view.exploding(clip)


@callback(
    Output("rec-projection", "figure"),
    Output("rec-projection-error", "children"),
    Input("rec-model", "value"),
    Input("rec-digit", "value"),
    Input("rec-color", "value"),
)
def on_projection(model, digit, color_by):
    return view.projection(model, digit, color_by)
