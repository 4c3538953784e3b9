"""Wiring of the compare page: each callback returns what a function of ``dashboard.views.compare`` computes."""

from __future__ import annotations

from dash import Input, Output, State, callback

from dashboard.callbacks.polling import on_job_tick
from dashboard.views import compare as view


@callback(
    Output("compare-model-a", "options"),
    Output("compare-model-b", "options"),
    Output("compare-mode", "value"),
    Output("compare-image", "options"),
    Output("compare-dataset", "options"),
    Output("compare-error", "children"),
    Input("compare-initial", "data"),
)
def on_load(initial):
    models, mode, images, datasets, error = view.load_page(initial)
    return models, models, mode, images, datasets, error


@callback(
    Output("compare-model-a", "value"),
    Output("compare-image", "value"),
    Output("compare-note", "children"),
    Input("compare-mode", "value"),
)
def on_mode(mode):
    return *view.preset(mode), view.page_note(mode)


@callback(
    Output("compare-model-b", "value"),
    Output("compare-model-b", "disabled"),
    Output("compare-layer-b", "disabled"),
    Input("compare-mode", "value"),
    Input("compare-model-a", "value"),
    State("compare-model-b", "value"),
    State("compare-model-b", "options"),
)
def on_model_a(mode, model_a, model_b, options):
    return view.model_b_for(mode, model_a, model_b, options)


@callback(
    Output("compare-checkpoint-a", "options"),
    Output("compare-checkpoint-a", "value"),
    Output("compare-layer-a", "options"),
    Output("compare-layer-a", "value"),
    Output("compare-dataset", "value"),
    Input("compare-model-a", "value"),
    State("compare-mode", "value"),
    State("compare-dataset", "value"),
    State("compare-dataset", "options"),
)
def on_side_a(model, mode, dataset, datasets):
    return *view.side_choices(model, mode, "a"), view.default_dataset(dataset, datasets, model)


@callback(
    Output("compare-checkpoint-b", "options"),
    Output("compare-checkpoint-b", "value"),
    Output("compare-layer-b", "options"),
    Output("compare-layer-b", "value"),
    Input("compare-model-b", "value"),
    State("compare-mode", "value"),
)
def on_side_b(model, mode):
    return view.side_choices(model, mode, "b")


@callback(
    Output("compare-image", "options", allow_duplicate=True),
    Output("compare-image", "value", allow_duplicate=True),
    Output("compare-upload-status", "children"),
    Input("compare-upload", "contents"),
    State("compare-upload", "filename"),
    State("compare-model-a", "value"),
    State("compare-image", "options"),
    prevent_initial_call=True,
)
def on_upload(contents, filename, model_a, options):
    return view.upload_image(contents, filename, model_a, options)


@callback(
    Output("compare-side-a", "children"),
    Output("compare-side-b", "children"),
    Output("compare-changed", "children"),
    Output("compare-error", "children", allow_duplicate=True),
    Input("compare-run", "n_clicks"),
    State("compare-mode", "value"),
    State("compare-model-a", "value"),
    State("compare-checkpoint-a", "value"),
    State("compare-layer-a", "value"),
    State("compare-model-b", "value"),
    State("compare-checkpoint-b", "value"),
    State("compare-layer-b", "value"),
    State("compare-image", "value"),
    prevent_initial_call=True,
)
def on_run(_n, *values):
    return view.run(*values)


@callback(
    Output("compare-cka-job", "data"),
    Output("compare-cka-poll", "disabled"),
    Output("compare-cka-status", "children"),
    Output("compare-cka-graph", "figure"),
    Output("compare-cka-best", "children"),
    Input("compare-cka-run", "n_clicks"),
    State("compare-model-a", "value"),
    State("compare-checkpoint-a", "value"),
    State("compare-model-b", "value"),
    State("compare-checkpoint-b", "value"),
    State("compare-dataset", "value"),
    State("compare-cka-images", "value"),
    prevent_initial_call=True,
)
def on_cka(_n, *values):
    return view.start_cka(*values)


on_job_tick(
    "compare-cka-poll",
    "compare-cka-job",
    [
        Output("compare-cka-graph", "figure", allow_duplicate=True),
        Output("compare-cka-best", "children", allow_duplicate=True),
        Output("compare-cka-poll", "disabled", allow_duplicate=True),
        Output("compare-cka-status", "children", allow_duplicate=True),
    ],
    view.poll_cka,
)
