"""Callbacks of the audit page.

Each ``@callback`` delegates to a plain function (same name without ``on_``) that tests call
directly against the real API app. The audit runs as an API job polled by ``audit-poll``; the
report is kept in ``audit-report`` and every view (summary, heat map, flags, detail) is drawn from it.
"""

from __future__ import annotations

import base64
import io
from typing import Any

import numpy as np
from dash import ALL, Input, Output, State, callback, ctx, no_update

from dashboard.api_client import ApiError, get_client
from dashboard.components.audit import filter_detail, flag_list, layer_table, summary_badges, threshold_inputs
from dashboard.components.common import error_alert
from dashboard.figures import message_figure
from dashboard.figures.audit import (
    checkpoint_updates_figure,
    cka_figure,
    correlation_heatmap,
    separability_figure,
)
from dashboard.images import store_upload
from server.config import get_settings
from server.jobs import TERMINAL

# --- pickers ---------------------------------------------------------------------------------------------


def load_page(initial: dict[str, Any] | None) -> tuple[list, Any, list, Any, Any, Any]:
    """Model and dataset options (digits_cnn on digits by default) and the threshold inputs."""
    initial = initial or {}
    client = get_client()
    try:
        models = client.models()
        datasets = client.datasets()
        defaults = client.audit_thresholds()
    except ApiError as err:
        return [], None, [], None, [], error_alert(str(err))
    usable = [m for m in models if m.get("pretrained")] or models
    model_ids = [m["id"] for m in usable]
    model = (
        initial.get("model")
        if initial.get("model") in model_ids
        else ("digits_cnn" if "digits_cnn" in model_ids else (model_ids or [None])[0])
    )
    ds_ids = [d["id"] for d in datasets]
    dataset = (
        initial.get("dataset")
        if initial.get("dataset") in ds_ids
        else ("digits" if "digits" in ds_ids else (ds_ids or [None])[0])
    )
    return (
        [{"label": f"{m['id']} · {m['architecture']}", "value": m["id"]} for m in usable],
        model,
        [{"label": f"{d['name']} ({d['num_images']:,} images)", "value": d["id"]} for d in datasets],
        dataset,
        threshold_inputs(defaults),
        None,
    )


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
    return load_page(initial)


# --- running an audit -------------------------------------------------------------------------------------


def audit_body(
    model: str | None,
    dataset: str | None,
    fail_on: str | None,
    what_if: list[str] | None,
    names: list[dict[str, str]],
    values: list[float | None],
) -> dict[str, Any]:
    thresholds = {n["name"]: v for n, v in zip(names, values, strict=False) if v is not None}
    body: dict[str, Any] = {
        "model": model,
        "dataset": dataset,
        "thresholds": thresholds,
        "what_if": bool(what_if),
    }
    if fail_on and fail_on.strip():
        body["fail_on"] = fail_on.strip()
    return body


def start(body: dict[str, Any]) -> tuple[Any, bool, Any, Any]:
    """(job store, poll disabled, error, status) after asking the API for an audit."""
    if not body.get("model") or not body.get("dataset"):
        return no_update, True, error_alert("Pick a model and a dataset."), ""
    try:
        job = get_client().start_audit(body)
    except ApiError as err:
        return None, True, error_alert(str(err)), ""
    return {"job_id": job["job_id"]}, False, None, "queued…"


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
    return start(audit_body(model, dataset, fail_on, what_if, names, values))


def poll(job: dict[str, Any] | None) -> tuple[Any, bool, Any, Any]:
    """(report, poll disabled, status, error) from the audit job's state."""
    if not job or not job.get("job_id"):
        return no_update, True, no_update, no_update
    try:
        state = get_client().job(job["job_id"])
    except ApiError as err:
        return no_update, True, "", error_alert(str(err))
    status = f"{state['status']} · {100 * state['progress']:.0f}% · {state.get('message') or ''}"
    if state["status"] == "succeeded":
        return state["result"], True, "done", None
    if state["status"] in TERMINAL:
        return no_update, True, status, error_alert(state.get("error") or f"The audit {state['status']}.")
    return no_update, False, status, no_update


@callback(
    Output("audit-report", "data"),
    Output("audit-poll", "disabled", allow_duplicate=True),
    Output("audit-status", "children", allow_duplicate=True),
    Output("audit-error", "children", allow_duplicate=True),
    Input("audit-poll", "n_intervals"),
    State("audit-job", "data"),
    prevent_initial_call=True,
)
def on_poll(_n, job):
    return poll(job)


# --- the report -------------------------------------------------------------------------------------------


def render_report(report: dict[str, Any] | None) -> tuple[Any, ...]:
    """(summary, layer options, layer, flags, separability figure, CKA figure)."""
    if not report:
        return (no_update,) * 6
    from dash import html

    summary = html.Div([summary_badges(report), layer_table(report)])
    options = [{"label": f"{la['name']} ({la['channels']})", "value": la["name"]} for la in report["layers"]]
    flagged_layers = [f["layer"] for f in report["flags"]]
    layer = flagged_layers[0] if flagged_layers else report["layers"][0]["name"]
    separability = (
        separability_figure(report)
        if report.get("separability")
        else message_figure("Unlabelled data: no curve.", height=120)
    )
    return summary, options, layer, flag_list(report), separability, cka_figure(report)


@callback(
    Output("audit-summary", "children"),
    Output("audit-layer", "options"),
    Output("audit-layer", "value"),
    Output("audit-flags", "children"),
    Output("audit-separability", "figure"),
    Output("audit-cka", "figure"),
    Input("audit-report", "data"),
)
def on_report(report):
    return render_report(report)


def correlation_of(report: dict[str, Any], layer: str) -> np.ndarray:
    url = report["artifacts"]["correlation"][layer]
    return np.load(io.BytesIO(get_client().artifact(url).content), allow_pickle=False)


def heatmap(report: dict[str, Any] | None, layer: str | None) -> Any:
    if not report or not layer:
        return message_figure("Run an audit, then pick a layer.", height=200)
    la = next((x for x in report["layers"] if x["name"] == layer), None)
    if la is None:
        return message_figure(f"No layer {layer} in this audit.", height=200)
    try:
        corr = correlation_of(report, layer)
    except (ApiError, KeyError, ValueError) as err:
        return message_figure(f"Correlation matrix unavailable: {err}", height=200)
    flags = {f["filter"]: f["kind"] for f in report["flags"] if f["layer"] == layer}
    return correlation_heatmap(corr, la["order"], flags, title=f"{layer}: {la['channels']} filters")


@callback(Output("audit-heatmap", "figure"), Input("audit-layer", "value"), State("audit-report", "data"))
def on_layer(layer, report):
    return heatmap(report, layer)


@callback(
    Output("audit-layer", "value", allow_duplicate=True),
    Input({"type": "audit-layer-pick", "name": ALL}, "n_clicks"),
    prevent_initial_call=True,
)
def on_layer_pick(clicks):
    if not ctx.triggered_id or not any(clicks or []):
        return no_update
    return ctx.triggered_id["name"]


def selection_from(triggered: Any, click: dict[str, Any] | None, layer: str | None) -> dict[str, Any] | Any:
    """The filter to show: a flag button's (layer, filter) or the heat-map cell's row filter."""
    if isinstance(triggered, dict) and triggered.get("type") == "audit-flag":
        return {"layer": triggered["layer"], "filter": int(triggered["filter"])}
    if triggered == "audit-heatmap" and click and click.get("points") and layer:
        return {"layer": layer, "filter": int(click["points"][0]["y"])}
    return no_update


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
    return selection_from(ctx.triggered_id, click, layer)


def detail(report: dict[str, Any] | None, selected: dict[str, Any] | None) -> Any:
    if not report or not selected:
        return no_update
    layer, filt = selected["layer"], int(selected["filter"])
    la = next((x for x in report["layers"] if x["name"] == layer), None)
    if la is None or not 0 <= filt < la["channels"]:
        return error_alert(f"No filter {filt} in layer {layer}.")
    client = get_client()
    thumbs = []
    for idx in (la.get("top_images") or [[]] * la["channels"])[filt]:
        try:
            data = client.dataset_thumbnail(report["dataset"]["id"], idx)
            thumbs.append((idx, "data:image/png;base64," + base64.b64encode(data).decode()))
        except ApiError:
            continue
    partners: list[tuple[int, float]] = []
    try:
        row = correlation_of(report, layer)[filt].astype(float)
        row[filt] = -np.inf
        best = np.argsort(-row, kind="stable")[:3]
        partners = [(int(i), float(row[i])) for i in best if np.isfinite(row[i])]
    except (ApiError, KeyError, ValueError):
        pass
    # The link opens Explore on the image that excites this filter most, so its maps and DeepVis are there.
    image = None
    if thumbs:
        try:
            image = store_upload(
                client.dataset_image(report["dataset"]["id"], thumbs[0][0]), get_settings().data_dir
            )
        except ApiError:
            image = None
    return filter_detail(report, layer, filt, thumbs, partners, image)


@callback(Output("audit-detail", "children"), Input("audit-selected", "data"), State("audit-report", "data"))
def on_detail(selected, report):
    return detail(report, selected)


# --- checkpoints ------------------------------------------------------------------------------------------


def checkpoint_options(model: str | None) -> tuple[list[dict[str, str]], list[str]]:
    if not model:
        return [], []
    try:
        names = get_client().checkpoints(model)
    except ApiError:
        return [], []
    epochs = [n for n in names if n.startswith("epoch_")]
    return [{"label": n, "value": n} for n in names], epochs


@callback(
    Output("audit-checkpoints", "options"),
    Output("audit-checkpoints", "value"),
    Input("audit-model", "value"),
)
def on_model(model):
    return checkpoint_options(model)


def start_compare(model: str | None, names: list[str] | None) -> tuple[Any, bool, Any]:
    names = list(names or [])
    if not model or len(names) < 2:
        return no_update, True, "Pick two or more checkpoints."
    try:
        job = get_client().start_checkpoint_compare({"model": model, "checkpoints": names})
    except ApiError as err:
        return None, True, error_alert(str(err))
    return {"job_id": job["job_id"]}, False, "comparing…"


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
    return start_compare(model, names)


def poll_compare(job: dict[str, Any] | None) -> tuple[Any, bool, Any]:
    if not job or not job.get("job_id"):
        return no_update, True, no_update
    try:
        state = get_client().job(job["job_id"])
    except ApiError as err:
        return no_update, True, error_alert(str(err))
    if state["status"] == "succeeded":
        result = state["result"]
        unchanged = sum(c["unchanged_filters"] for c in result["comparisons"])
        return (
            checkpoint_updates_figure(result),
            True,
            f"{unchanged} filters did not change between consecutive checkpoints.",
        )
    if state["status"] in TERMINAL:
        return no_update, True, error_alert(state.get("error") or "The comparison failed.")
    return no_update, False, f"{state['status']} · {100 * state['progress']:.0f}%"


@callback(
    Output("audit-cmp-graph", "figure"),
    Output("audit-cmp-poll", "disabled", allow_duplicate=True),
    Output("audit-cmp-status", "children", allow_duplicate=True),
    Input("audit-cmp-poll", "n_intervals"),
    State("audit-cmp-job", "data"),
    prevent_initial_call=True,
)
def on_cmp_poll(_n, job):
    return poll_compare(job)
