"""Wiring of the audit page: each callback returns what a function of ``dashboard.views.audit`` computes."""

from __future__ import annotations

from dash import ALL, Input, Output, State, callback, ctx, no_update

from dashboard.callbacks.polling import on_job_tick
from dashboard.views import audit as view


@callback(
    Output("audit-model", "options"),
    Output("audit-model", "value"),
    Output("audit-dataset", "options"),
    Output("audit-dataset", "value"),
    Output("audit-thresholds", "children"),
    Output("audit-error", "children"),
    Input("audit-initial", "data"),
)
def on_load(initial):
    return view.load_page(initial)


@callback(
    Output("audit-job", "data"),
    Output("audit-poll", "disabled"),
    Output("audit-error", "children", allow_duplicate=True),
    Output("audit-status", "children"),
    Input("audit-run", "n_clicks"),
    State("audit-model", "value"),
    State("audit-dataset", "value"),
    State("audit-fail-on", "value"),
    State("audit-what-if", "value"),
    State({"type": "audit-threshold", "name": ALL}, "id"),
    State({"type": "audit-threshold", "name": ALL}, "value"),
    prevent_initial_call=True,
)
def on_run(_n, model, dataset, fail_on, what_if, names, values):
    return view.start(view.audit_body(model, dataset, fail_on, what_if, names, values))


on_job_tick(
    "audit-poll",
    "audit-job",
    [
        Output("audit-report", "data"),
        Output("audit-poll", "disabled", allow_duplicate=True),
        Output("audit-status", "children", allow_duplicate=True),
        Output("audit-error", "children", allow_duplicate=True),
    ],
    view.poll,
)


@callback(
    Output("audit-summary", "children"),
    Output("audit-layer", "options"),
    Output("audit-layer", "value"),
    Output("audit-flags", "children"),
    Output("audit-separability", "figure"),
    Output("audit-cka", "figure"),
    Output("audit-sparsity", "figure"),
    Output("audit-checkerboard", "children"),
    Input("audit-report", "data"),
)
def on_report(report):
    return view.render_report(report)


@callback(
    Output("audit-sparsity-filters", "figure"), Input("audit-layer", "value"), State("audit-report", "data")
)
def on_sparsity_layer(layer, report):
    return view.layer_sparsity(report, layer)


@callback(Output("audit-heatmap", "figure"), Input("audit-layer", "value"), State("audit-report", "data"))
def on_layer(layer, report):
    return view.heatmap(report, layer)


@callback(
    Output("audit-layer", "value", allow_duplicate=True),
    Input({"type": "audit-layer-pick", "name": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def on_layer_pick(clicks):
    if not ctx.triggered_id or not any(clicks or []):
        return no_update  # the buttons were (re)drawn, not clicked
    return ctx.triggered_id["name"]


@callback(
    Output("audit-selected", "data"),
    Input({"type": "audit-flag", "layer": ALL, "filter": ALL}, "n_clicks"),
    Input("audit-heatmap", "clickData"),
    State("audit-layer", "value"),
    prevent_initial_call=True,
)
def on_select(clicks, click, layer):
    if isinstance(ctx.triggered_id, dict) and not any(clicks or []):
        return no_update  # the flag buttons were (re)drawn, not clicked
    return view.selection_from(ctx.triggered_id, click, layer)


@callback(Output("audit-detail", "children"), Input("audit-selected", "data"), State("audit-report", "data"))
def on_detail(selected, report):
    return view.detail(report, selected)


@callback(
    Output("audit-checkpoints", "options"),
    Output("audit-checkpoints", "value"),
    Input("audit-model", "value"),
)
def on_model(model):
    return view.checkpoint_options(model)


@callback(
    Output("audit-cmp-job", "data"),
    Output("audit-cmp-poll", "disabled"),
    Output("audit-cmp-status", "children"),
    Input("audit-compare", "n_clicks"),
    State("audit-model", "value"),
    State("audit-checkpoints", "value"),
    prevent_initial_call=True,
)
def on_compare(_n, model, names):
    return view.start_compare(model, names)


on_job_tick(
    "audit-cmp-poll",
    "audit-cmp-job",
    [
        Output("audit-cmp-graph", "figure"),
        Output("audit-cmp-poll", "disabled", allow_duplicate=True),
        Output("audit-cmp-status", "children", allow_duplicate=True),
    ],
    view.poll_compare,
)
