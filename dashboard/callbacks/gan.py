"""Wiring of the GAN page: each callback returns what a function of ``dashboard.views.gan`` computes."""

from __future__ import annotations

from dash import Input, Output, callback

from dashboard.views import gan as view


@callback(
    Output("gan-image", "children"),
    Output("gan-error", "children"),
    Input("gan-seed", "value"),
    *(Input(f"gan-dir-{i}", "value") for i in range(view.DIRECTIONS)),
)
def on_latent(seed, *offsets):
    return view.playground(seed, list(offsets))


@callback(
    Output("gan-strip", "children"),
    Output("gan-error", "children", allow_duplicate=True),
    Input("gan-seed-a", "value"),
    Input("gan-seed-b", "value"),
    Input("gan-steps", "value"),
    prevent_initial_call="initial_duplicate",
)
def on_strip(seed_a, seed_b, steps):
    return view.strip(seed_a, seed_b, steps)


@callback(
    Output("gan-training", "data"),
    Output("gan-snapshot", "max"),
    Output("gan-snapshot", "value"),
    Output("gan-error", "children", allow_duplicate=True),
    Input("gan-training", "id"),
    prevent_initial_call="initial_duplicate",
)
def on_load(_id):
    record, error = view.training()
    last = len(record["snapshots"]) - 1 if record else 0
    return record, last, last, error


@callback(
    Output("gan-samples", "children"),
    Output("gan-losses", "figure"),
    Output("gan-scores", "figure"),
    Output("gan-snapshot-caption", "children"),
    Input("gan-training", "data"),
    Input("gan-snapshot", "value"),
)
def on_scrub(record, index):
    return view.scrub(record, index)


@callback(
    Output("gan-modes", "figure"),
    Output("gan-modes-warning", "children"),
    Output("gan-error", "children", allow_duplicate=True),
    Input("gan-modes-n", "value"),
    prevent_initial_call="initial_duplicate",
)
def on_modes(n):
    return view.modes(n)
