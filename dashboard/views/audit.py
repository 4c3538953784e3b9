"""What the audit page shows, as plain functions of its inputs (the callbacks only wire them).

The audit runs as an API job polled by ``audit-poll``; the report is kept in ``audit-report`` and every
view (summary, heat map, flags, detail) is drawn from it. Tests call these functions against the real
API app.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dash import html, no_update

from dashboard.api_client import ApiError, browser_url, get_client
from dashboard.components.audit import (
    checkerboard_panel,
    filter_detail,
    flag_list,
    layer_table,
    summary_badges,
    threshold_inputs,
)
from dashboard.components.common import error_alert
from dashboard.figures import message_figure
from dashboard.figures.audit import (
    checkpoint_updates_figure,
    cka_figure,
    correlation_heatmap,
    filter_sparsity_figure,
    separability_figure,
    sparsity_curve_figure,
)
from dashboard.images import png_data_url, store_upload
from dashboard.jobs import poll_job, start_job
from dashboard.settings import get_settings
from dashboard.views.common import model_option, pick

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
    model = pick(initial.get("model"), [m["id"] for m in usable], "digits_cnn")
    dataset = pick(initial.get("dataset"), [d["id"] for d in datasets], "digits")
    return (
        [model_option(m) for m in usable],
        model,
        [{"label": f"{d['name']} ({d['num_images']:,} images)", "value": d["id"]} for d in datasets],
        dataset,
        threshold_inputs(defaults),
        None,
    )


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
    started = start_job(lambda: get_client().start_audit(body))
    if started.error:
        return None, True, error_alert(str(started.error)), ""
    return started.store, False, None, "queued…"


def poll(job: dict[str, Any] | None) -> tuple[Any, bool, Any, Any]:
    """(report, poll disabled, status, error) from the audit job's state."""
    poll = poll_job(job)
    if poll is None:
        return no_update, True, no_update, no_update
    if poll.error:
        return no_update, True, "", error_alert(str(poll.error))
    state = poll.job
    status = f"{state['status']} · {100 * state['progress']:.0f}% · {state.get('message') or ''}"
    if poll.succeeded:
        return state["result"], True, "done", None
    if poll.done:
        return no_update, True, status, error_alert(state.get("error") or f"The audit {state['status']}.")
    return no_update, False, status, no_update


# --- the report -------------------------------------------------------------------------------------------


def render_report(report: dict[str, Any] | None) -> tuple[Any, ...]:
    """(summary, layer options, layer, flags, separability figure, CKA figure, sparsity curve, checkerboard)."""
    if not report:
        return (no_update,) * 8
    summary = html.Div([summary_badges(report), layer_table(report)])
    options = [{"label": f"{la['name']} ({la['channels']})", "value": la["name"]} for la in report["layers"]]
    flagged_layers = [f["layer"] for f in report["flags"]]
    layer = flagged_layers[0] if flagged_layers else report["layers"][0]["name"]
    separability = (
        separability_figure(report)
        if report.get("separability")
        else message_figure("Unlabelled data: no curve.", height=120)
    )
    sparsity = (
        sparsity_curve_figure(report)
        if report.get("sparsity")
        else message_figure("This report has no sparsity (run the audit again).", height=120)
    )
    return (
        summary,
        options,
        layer,
        flag_list(report),
        separability,
        cka_figure(report),
        sparsity,
        checkerboard_panel(report, browser_url),
    )


def layer_sparsity(report: dict[str, Any] | None, layer: str | None) -> Any:
    """The chosen layer's sparsity per filter."""
    if not report or not layer:
        return no_update
    la = next((x for x in report["layers"] if x["name"] == layer), None)
    if la is None or not la.get("sparsity"):
        return message_figure("No sparsity for this layer.", height=120)
    return filter_sparsity_figure(la)


def correlation_of(report: dict[str, Any], layer: str) -> np.ndarray:
    url = report["artifacts"]["correlation"][layer]
    return get_client().artifact_array(url)


def closest_filters(report: dict[str, Any], layer: str, filt: int, n: int = 3) -> list[tuple[int, float]]:
    """The ``n`` filters of ``layer`` whose responses correlate most with ``filt``'s: ``(filter, r)``, best
    first; empty when the report has no correlation matrix for the layer."""
    try:
        row = correlation_of(report, layer)[filt].astype(float)
    except (ApiError, KeyError, ValueError, IndexError):
        return []
    row[filt] = -np.inf
    best = np.argsort(-row, kind="stable")[:n]
    return [(int(i), float(row[i])) for i in best if np.isfinite(row[i])]


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


def selection_from(triggered: Any, click: dict[str, Any] | None, layer: str | None) -> dict[str, Any] | Any:
    """The filter to show: a flag button's (layer, filter) or the heat-map cell's row filter."""
    if isinstance(triggered, dict) and triggered.get("type") == "audit-flag":
        return {"layer": triggered["layer"], "filter": int(triggered["filter"])}
    if triggered == "audit-heatmap" and click and click.get("points") and layer:
        return {"layer": layer, "filter": int(click["points"][0]["y"])}
    return no_update


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
            thumbs.append((idx, png_data_url(data)))
        except ApiError:
            continue
    partners = closest_filters(report, layer, filt)
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


def start_compare(model: str | None, names: list[str] | None) -> tuple[Any, bool, Any]:
    names = list(names or [])
    if not model or len(names) < 2:
        return no_update, True, "Pick two or more checkpoints."
    started = start_job(lambda: get_client().start_checkpoint_compare({"model": model, "checkpoints": names}))
    if started.error:
        return None, True, error_alert(str(started.error))
    return started.store, False, "comparing…"


def poll_compare(job: dict[str, Any] | None) -> tuple[Any, bool, Any]:
    poll = poll_job(job)
    if poll is None:
        return no_update, True, no_update
    if poll.error:
        return no_update, True, error_alert(str(poll.error))
    state = poll.job
    if poll.succeeded:
        result = state["result"]
        unchanged = sum(c["unchanged_filters"] for c in result["comparisons"])
        return (
            checkpoint_updates_figure(result),
            True,
            f"{unchanged} filters did not change between consecutive checkpoints.",
        )
    if poll.done:
        return no_update, True, error_alert(state.get("error") or "The comparison failed.")
    return no_update, False, f"{state['status']} · {100 * state['progress']:.0f}%"
