"""Wiring of the explore page: each callback reads Dash's inputs and context and returns what a function of
``dashboard.views.explore`` (or, for the card's weight pull, ``dashboard.views.weights``) computes (same name
without ``on_``)."""

from __future__ import annotations

import json

from dash import ALL, ClientsideFunction, Input, Output, State, callback, clientside_callback, ctx, no_update

from dashboard.callbacks.polling import on_job_tick
from dashboard.views import camera as camera_view
from dashboard.views import explore as view
from dashboard.views import weights
from dashboard.views.common import is_untrained, precision_of


@callback(
    Output("model-picker", "options"),
    Output("model-picker", "value"),
    Output("model-error", "children"),
    Input("explore-initial", "data"),
)
def on_load_models(initial):
    return view.load_models(initial)


@callback(
    Output("model-card", "children"),
    Output("layers-data", "data"),
    Output("selected-layer", "data"),
    Input("model-picker", "value"),
    Input("untrained-toggle", "value"),
    Input("weights-pulled", "data"),  # the weights just arrived: show the card and the layers again
    State("selected-layer", "data"),
)
def on_show_model(model, toggle, _pulled, current_layer):
    return view.show_model(model, is_untrained(toggle), current_layer)


@callback(
    Output("layer-browser", "children"),
    Input("layers-data", "data"),
    Input("selected-layer", "data"),
)
def on_layers_view(layers_data, layer):
    return view.layers_view(layers_data, layer)


@callback(
    Output("selected-layer", "data", allow_duplicate=True),
    Input("layer-click", "data"),
    State("layers-data", "data"),
    prevent_initial_call=True,
)
def on_pick_layer(click, layers_data):
    return view.pick_layer((click or {}).get("layer"), layers_data)


@callback(
    Output("image-id", "data"),
    Output("upload-status", "children"),
    Output("image-upload", "contents"),
    Input("image-upload", "contents"),
    Input({"type": "gallery-item", "image": ALL}, "n_clicks"),
    State("image-upload", "filename"),
    State("model-picker", "value"),
    State("untrained-toggle", "value"),
    prevent_initial_call=True,
)
def on_choose_image(contents, _clicks, filename, model, toggle):
    clicked = bool(ctx.triggered[0].get("value")) if ctx.triggered else False
    return view.choose_image(ctx.triggered_id, clicked, contents, filename, model, is_untrained(toggle))


@callback(
    Output("image-box", "hidden"),
    Output("latent-box", "hidden"),
    Output("image-id", "data", allow_duplicate=True),
    Input("layers-data", "data"),
    State("image-id", "data"),
    State("latent-seed", "value"),
    prevent_initial_call=True,
)
def on_input_kind(layers_data, image_id, seed):
    return view.input_kind(layers_data, image_id, seed)


@callback(
    Output("image-id", "data", allow_duplicate=True),
    Output("latent-seed", "value"),
    Output("latent-status", "children"),
    Input("latent-seed", "value"),
    Input("latent-next", "n_clicks"),
    State("image-id", "data"),
    prevent_initial_call=True,
)
def on_choose_latent(seed, _next, image_id):
    return view.choose_latent(ctx.triggered_id, seed, image_id)


@callback(
    Output("predictions-graph", "figure"),
    Output("top1", "children"),
    Output("input-preview", "src"),
    Output("input-caption", "children"),
    Output("predictions-error", "children"),
    Input("image-id", "data"),
    Input("model-picker", "value"),
    Input("untrained-toggle", "value"),
    Input("precision-toggle", "value"),
    Input("weights-pulled", "data"),  # the weights just arrived: predict with them
)
def on_show_predictions(image_id, model, toggle, precision, _pulled):
    return view.show_predictions(image_id, model, is_untrained(toggle), precision_of(precision))


@callback(
    Output("activations-data", "data"),
    Output("grid-error", "children"),
    Input("image-id", "data"),
    Input("model-picker", "value"),
    Input("untrained-toggle", "value"),
    Input("selected-layer", "data"),
    Input("precision-toggle", "value"),
    Input("weights-pulled", "data"),
)
def on_load_activations(image_id, model, toggle, layer, precision, _pulled):
    return view.load_activations(image_id, model, is_untrained(toggle), layer, precision_of(precision))


@callback(
    Output("filter-grid", "children"),
    Output("grid-summary", "children"),
    Output("grid-timing", "children"),
    Input("activations-data", "data"),
    Input("grid-sort", "value"),
)
def on_render_grid(acts, sort):
    return view.render_grid(acts, sort)


@callback(
    Output("selected-filter", "data"),
    Input("tile-click", "data"),
    Input("filter-prev", "n_clicks"),
    Input("filter-next", "n_clicks"),
    Input("filter-close", "n_clicks"),
    Input("activations-data", "data"),
    State("selected-filter", "data"),
    State("grid-sort", "value"),
    prevent_initial_call=True,
)
def on_select_filter(tile_click, prev_clicks, next_clicks, _close, acts, current, sort):
    clicked = (tile_click or {}).get("index")
    return view.select_filter(ctx.triggered_id, clicked, acts, current, sort, prev_clicks, next_clicks)


@callback(
    Output("filter-detail", "hidden"),
    Output("detail-title", "children"),
    Output("detail-input", "src"),
    Output("detail-map", "src"),
    Output("detail-stats", "children"),
    Output("detail-weights", "children"),
    Input("selected-filter", "data"),
    Input("activations-data", "data"),
    State("model-picker", "value"),
    State("untrained-toggle", "value"),
    State("layers-data", "data"),
)
def on_show_detail(selection, acts, model, toggle, layers_data):
    return view.show_detail(selection, acts, model, is_untrained(toggle), layers_data)


@callback(
    Output("predictions-graph", "figure", allow_duplicate=True),
    Output("top1", "children", allow_duplicate=True),
    Output("input-preview", "src", allow_duplicate=True),
    Output("input-caption", "children", allow_duplicate=True),
    Output("filter-grid", "children", allow_duplicate=True),
    Output("grid-summary", "children", allow_duplicate=True),
    Output("grid-error", "children", allow_duplicate=True),
    Output("predictions-error", "children", allow_duplicate=True),
    Output("camera-done", "children"),
    Input("camera-frame", "data"),
    State("model-picker", "value"),
    State("untrained-toggle", "value"),
    State("selected-layer", "data"),
    State("precision-toggle", "value"),
    State("grid-sort", "value"),
    State("input-caption", "children"),
    State("grid-summary", "children"),
    State("grid-error", "children"),
    State("predictions-error", "children"),
    prevent_initial_call=True,
)
def on_camera_frame(frame, model, toggle, layer, precision, sort, caption, summary, grid_error, error):
    shown = {"caption": caption, "summary": summary, "grid_error": grid_error, "error": error}
    *parts, done = camera_view.show_frame(
        frame, model, is_untrained(toggle), layer, precision_of(precision), sort, shown
    )
    return (*parts, done if done is no_update else json.dumps(done))


# static/camera.js: the button starts and stops the camera; an answered frame (the `camera-done` text,
# which camera.js observes) frees it to send the next
clientside_callback(
    ClientsideFunction(namespace="camera", function_name="toggle"),
    Output("camera-toggle", "children"),
    Input("camera-toggle", "n_clicks"),
)

# static/camera.js keeps the page's inputs for the live frames (POST /camera/frame, read there as
# dashboard/views/camera.py's live_frame reads them); a change sends the next frame through Dash
clientside_callback(
    ClientsideFunction(namespace="camera", function_name="settings"),
    Output("camera-settings", "data"),
    Input("model-picker", "value"),
    Input("untrained-toggle", "value"),
    Input("selected-layer", "data"),
    Input("precision-toggle", "value"),
    Input("grid-sort", "value"),
)


clientside_callback(
    "function (opacity) { return {opacity: opacity}; }",
    Output("detail-map", "style"),
    Input("detail-opacity", "value"),
)


@callback(
    Output("explore-query", "data"),
    Input("model-picker", "value"),
    Input("untrained-toggle", "value"),
    Input("image-id", "data"),
    Input("selected-layer", "data"),
    Input("selected-filter", "data"),
)
def on_explore_query(model, toggle, image_id, layer, selection):
    return view.explore_query(model, is_untrained(toggle), image_id, layer, selection)


# replaceState, not dcc.Location: a changed search string would make Dash pages re-render the page.
clientside_callback(
    """
    function (query) {
        if (typeof query !== "string") { return window.dash_clientside.no_update; }
        const url = window.location.pathname + query;
        if (url !== window.location.pathname + window.location.search) {
            window.history.replaceState(window.history.state, "", url);
        }
        return window.dash_clientside.no_update;
    }
    """,
    Output("explore-url-synced", "data"),
    Input("explore-query", "data"),
)


@callback(
    Output("weights-pull-job", "data"),
    Output("weights-pull-status", "children"),
    Output("weights-pull-poll", "disabled"),
    Input("weights-pull-button", "n_clicks"),
    State("model-picker", "value"),
    prevent_initial_call=True,
)
def on_start_pull(n_clicks, model):
    return weights.start_pull(n_clicks, model)


on_job_tick(
    "weights-pull-poll",
    "weights-pull-job",
    [
        Output("weights-pull-status", "children", allow_duplicate=True),
        Output("weights-pull-poll", "disabled", allow_duplicate=True),
        Output("weights-pulled", "data"),
    ],
    weights.poll_pull,
)
