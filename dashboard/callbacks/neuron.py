"""Wiring of the neuron page: each callback returns what a function of ``dashboard.views.neuron`` computes."""

from __future__ import annotations

from dash import Input, Output, State, callback

from dashboard.callbacks.polling import on_job_tick
from dashboard.views import audit as audit_view
from dashboard.views import neuron as view
from dashboard.views.attributions import poll_top_images


@callback(
    Output("neuron-title", "children"),
    Output("neuron-nav", "children"),
    Output("neuron-error", "children"),
    Output("neuron-checked", "data"),
    Output("neuron-dataset", "options"),
    Output("neuron-dataset", "value"),
    Output("neuron-weights", "children"),
    Output("neuron-deepvis-job", "data"),
    Output("neuron-deepvis-poll", "disabled"),
    Output("neuron-deepvis-status", "children"),
    Output("neuron-sections", "hidden"),
    Input("neuron-target", "data"),
)
def on_load(target):
    return view.load(target)


@callback(
    Output("neuron-top-job", "data"),
    Output("neuron-top-poll", "disabled"),
    Output("neuron-top-status", "children"),
    Output("neuron-top-grid", "children"),
    Output("neuron-audit-job", "data"),
    Output("neuron-audit-poll", "disabled"),
    Output("neuron-audit-error", "children"),
    Output("neuron-audit-status", "children"),
    Input("neuron-dataset", "value"),
    State("neuron-checked", "data"),
)
def on_dataset(dataset, checked):
    return view.start_dataset_jobs(checked, dataset)


on_job_tick(
    "neuron-top-poll",
    "neuron-top-job",
    [
        Output("neuron-top-status", "children", allow_duplicate=True),
        Output("neuron-top-grid", "children", allow_duplicate=True),
        Output("neuron-top-poll", "disabled", allow_duplicate=True),
    ],
    poll_top_images,
)

on_job_tick(
    "neuron-deepvis-poll",
    "neuron-deepvis-job",
    [
        Output("neuron-deepvis", "children"),
        Output("neuron-deepvis-poll", "disabled", allow_duplicate=True),
        Output("neuron-deepvis-status", "children", allow_duplicate=True),
    ],
    view.poll_deepvis,
)

on_job_tick(
    "neuron-audit-poll",
    "neuron-audit-job",
    [
        Output("neuron-report", "data"),
        Output("neuron-audit-poll", "disabled", allow_duplicate=True),
        Output("neuron-audit-status", "children", allow_duplicate=True),
        Output("neuron-audit-error", "children", allow_duplicate=True),
    ],
    audit_view.poll,
)


@callback(
    Output("neuron-stats", "children"),
    Output("neuron-flags", "children"),
    Output("neuron-correlated", "children"),
    Input("neuron-report", "data"),
    State("neuron-checked", "data"),
)
def on_report(report, checked):
    return view.audit_sections(report, checked)
