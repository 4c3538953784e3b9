"""Wiring of the projections page: each callback returns what a function of
``dashboard.views.projections`` computes (same name without ``on_``)."""

from __future__ import annotations

from dash import ALL, Input, Output, State, callback, clientside_callback, ctx

from dashboard.callbacks.polling import on_job_tick
from dashboard.views import cautions as cautions_view
from dashboard.views import projections as view


@callback(
    Output("proj-dataset", "options"),
    Output("proj-dataset", "value"),
    Output("proj-model", "options"),
    Output("proj-model", "value"),
    Output("proj-methods", "data"),
    Output("proj-error", "children"),
    Input("proj-initial", "data"),
)
def on_load_pickers(initial):
    return view.load_pickers(initial)


@callback(
    Output("proj-layer", "options"),
    Output("proj-layer", "value"),
    Input("proj-model", "value"),
    State("proj-initial", "data"),
)
def on_layer_options(model, initial):
    return view.layer_options(model, (initial or {}).get("layer"))


@callback(
    Output("proj-dataset-info", "children"), Input("proj-dataset", "value"), State("proj-dataset", "options")
)
def on_dataset_info(dataset, options):
    return view.dataset_info(dataset, options)


@callback(
    Output("proj-params", "children"),
    Output("proj-tsne-sliders", "style"),
    Input("proj-method", "value"),
    Input("proj-methods", "data"),
)
def on_method_controls(method, methods):
    return view.method_controls(method, methods)


@callback(Output("proj-epsilon-value", "children"), Input("proj-epsilon", "value"))
def on_epsilon_label(value):
    return view.epsilon_label(value)


@callback(
    Output("proj-dataset", "options", allow_duplicate=True),
    Output("proj-dataset", "value", allow_duplicate=True),
    Output("proj-upload-msg", "children"),
    Input("proj-upload", "contents"),
    State("proj-upload", "filename"),
    State("proj-upload-name", "value"),
    prevent_initial_call=True,
)
def on_upload_dataset(contents, filenames, name):
    return view.upload_dataset(contents, filenames, name)


@callback(
    Output("proj-job", "data"),
    Output("proj-poll", "disabled"),
    Output("proj-error", "children", allow_duplicate=True),
    Output("proj-points", "data"),
    Output("proj-result", "data"),
    Input("proj-run", "n_clicks"),
    Input("proj-stop", "n_clicks"),
    Input("proj-perplexity", "value"),
    Input("proj-epsilon", "value"),
    State("proj-job", "data"),
    State("proj-poll", "disabled"),
    State("proj-dataset", "value"),
    State("proj-model", "value"),
    State("proj-layer", "value"),
    State("proj-pool", "value"),
    State("proj-method", "value"),
    State({"type": "proj-param", "name": ALL}, "id"),
    State({"type": "proj-param", "name": ALL}, "value"),
    State("proj-seeds", "value"),
    State("proj-baseline", "value"),
    State("proj-perplexities", "value"),
    prevent_initial_call=True,
)
def on_run_or_steer(
    _run,
    _stop,
    perplexity,
    epsilon,
    job,
    poll_disabled,
    dataset,
    model,
    layer,
    pool,
    method,
    ids,
    values,
    seeds,
    baseline,
    sweep,
):
    body = view.projection_body(
        dataset, model, layer, pool, method, perplexity, epsilon, ids, values, seeds, baseline, sweep
    )
    return view.run_or_steer(ctx.triggered_id, job, body, running=poll_disabled is False)


on_job_tick(
    "proj-poll",
    "proj-job",
    [
        Output("proj-coords", "data"),
        Output("proj-points", "data", allow_duplicate=True),
        Output("proj-result", "data", allow_duplicate=True),
        Output("proj-poll", "disabled", allow_duplicate=True),
        Output("proj-status", "children"),
        Output("proj-job", "data", allow_duplicate=True),
    ],
    view.poll,
    State("proj-points", "data"),
)


@callback(
    Output("proj-scatter", "figure"),
    Input("proj-coords", "data"),
    Input("proj-points", "data"),
    Input("proj-color", "value"),
    Input("proj-activation", "data"),
    State("proj-job", "data"),
)
def on_scatter(coords, points, color_by, activation, job):
    return view.scatter(coords, points, color_by, activation, job)


@callback(
    Output("proj-activation", "data"),
    Output("proj-error", "children", allow_duplicate=True),
    Input("proj-color", "value"),
    Input("proj-filter", "value"),
    Input("proj-job", "data"),
    prevent_initial_call=True,
)
def on_filter_activation(color_by, channel, job):
    return view.filter_activation(color_by, channel, job)


@callback(Output("proj-guidance", "children"), Input("proj-dataset", "value"))
def on_guidance(dataset):
    return view.guidance(dataset)


@callback(Output("proj-cautions", "children"), Input("proj-result", "data"), State("proj-points", "data"))
def on_cautions(result, points):
    return cautions_view.cautions(result, points)


@callback(Output("proj-purity", "children"), Input("proj-result", "data"))
def on_purity(result):
    return view.purity(result)


@callback(
    Output("proj-hover", "children"),
    Input("proj-scatter", "hoverData"),
    State("proj-job", "data"),
    State("proj-points", "data"),
)
def on_hover(hover_data, job, points):
    return view.hover(hover_data, job, points)


@callback(
    Output("proj-nav", "href"),
    Input("proj-scatter", "clickData"),
    State("proj-job", "data"),
    prevent_initial_call=True,
)
def on_open_in_explore(click_data, job):
    return view.open_in_explore(click_data, job)


@callback(
    Output("proj-download", "data"),
    Input("proj-export-csv", "n_clicks"),
    State("proj-job", "data"),
    prevent_initial_call=True,
)
def on_export_csv(_n, job):
    return view.export_csv(job)


for _fmt in ("png", "svg"):
    clientside_callback(
        f"""
        function(n) {{
            if (!n) {{ return window.dash_clientside.no_update; }}
            const graph = document.querySelector('#proj-scatter .js-plotly-plot');
            if (graph && window.Plotly) {{
                window.Plotly.downloadImage(graph, {{format: '{_fmt}', filename: 'projection', width: 1200, height: 900}});
            }}
            return '';
        }}
        """,
        Output(f"proj-export-{_fmt}", "title"),
        Input(f"proj-export-{_fmt}", "n_clicks"),
        prevent_initial_call=True,
    )
