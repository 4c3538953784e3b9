"""Wiring of the filter insights in the explore page's detail view: each callback returns what a function
of ``dashboard.views.attributions`` computes (same name without ``on_``)."""

from __future__ import annotations

from dash import Input, Output, State, callback, ctx, no_update

from dashboard.callbacks.polling import on_job_tick
from dashboard.views import attributions as view
from dashboard.views.common import is_untrained


@callback(
    Output("attr-row", "children"),
    Output("attr-error", "children"),
    Input("selected-filter", "data"),
    Input("activations-data", "data"),
    Input("attr-position", "value"),
    State("image-id", "data"),
    State("model-picker", "value"),
    State("untrained-toggle", "value"),
)
def on_show_attributions(selection, acts, position, image_id, model, toggle):
    return view.show_attributions(selection, acts, image_id, model, is_untrained(toggle), position or "max")


@callback(
    Output("deepvis-job", "data"),
    Output("deepvis-poll", "disabled"),
    Output("deepvis-cancel", "disabled"),
    Output("deepvis-status", "children"),
    Output("deepvis-progress", "value"),
    Input("deepvis-start", "n_clicks"),
    State("selected-filter", "data"),
    State("activations-data", "data"),
    State("model-picker", "value"),
    State("untrained-toggle", "value"),
    State("deepvis-preset", "value"),
    State("deepvis-steps", "value"),
    State("deepvis-seed", "value"),
    State("deepvis-target", "value"),
    State("deepvis-class", "value"),
    prevent_initial_call=True,
)
def on_start_deepvis(_clicks, selection, acts, model, toggle, preset, steps, seed, target_kind, class_index):
    return view.start_deepvis(
        selection, acts, model, is_untrained(toggle), preset, steps, seed, target_kind, class_index
    )


on_job_tick(
    "deepvis-poll",
    "deepvis-job",
    [
        Output("deepvis-image", "src"),
        Output("deepvis-progress", "value", allow_duplicate=True),
        Output("deepvis-status", "children", allow_duplicate=True),
        Output("deepvis-poll", "disabled", allow_duplicate=True),
        Output("deepvis-cancel", "disabled", allow_duplicate=True),
        Output("deepvis-job", "data", allow_duplicate=True),
        Output("deepvis-verdict", "children"),
    ],
    view.poll_deepvis,
)


@callback(
    Output("deepvis-status", "children", allow_duplicate=True),
    Input("deepvis-cancel", "n_clicks"),
    State("deepvis-job", "data"),
    prevent_initial_call=True,
)
def on_cancel_deepvis(_clicks, job_store):
    if ctx.triggered_id != "deepvis-cancel":
        return no_update
    return view.cancel_deepvis(job_store)


@callback(
    Output("top-dataset", "options"),
    Output("top-status", "children", allow_duplicate=True),
    Input("selected-filter", "data"),
    prevent_initial_call="initial_duplicate",
)
def on_dataset_options(_selection):
    return view.dataset_options()


@callback(
    Output("top-job", "data"),
    Output("top-poll", "disabled"),
    Output("top-status", "children"),
    Output("top-grid", "children"),
    Input("top-start", "n_clicks"),
    State("selected-filter", "data"),
    State("activations-data", "data"),
    State("model-picker", "value"),
    State("untrained-toggle", "value"),
    State("top-dataset", "value"),
    prevent_initial_call=True,
)
def on_start_top_images(_clicks, selection, acts, model, toggle, dataset):
    return view.start_top_images(selection, acts, model, is_untrained(toggle), dataset)


on_job_tick(
    "top-poll",
    "top-job",
    [
        Output("top-status", "children", allow_duplicate=True),
        Output("top-grid", "children", allow_duplicate=True),
        Output("top-poll", "disabled", allow_duplicate=True),
    ],
    view.poll_top_images,
)
