"""Callbacks of the filter insights (attribution maps side by side, DeepVis job with live frames).

As in the explore callbacks, each ``@callback`` delegates to a plain function that tests call directly.
"""

from __future__ import annotations

from typing import Any

from dash import Input, Output, State, callback, ctx, no_update

from dashboard.api_client import ApiError, browser_url, get_client
from dashboard.components.attributions import attribution_row, job_status_text, top_images_grid
from dashboard.components.common import error_alert
from dashboard.images import UnknownImageError, image_bytes
from server.config import get_settings
from server.jobs import TERMINAL

MAP_METHODS = ("deconvnet", "guided_backprop", "gradcam")


def _selected(selection: dict[str, Any] | None, acts: dict[str, Any] | None) -> tuple[str, int] | None:
    index = (selection or {}).get("index")
    if not acts or index is None or selection.get("layer") != acts.get("layer"):
        return None
    if not 0 <= index < len(acts.get("channels", [])):
        return None
    return acts["layer"], int(index)


def show_attributions(
    selection: dict[str, Any] | None,
    acts: dict[str, Any] | None,
    image_id: str | None,
    model: str | None,
    untrained: bool,
    position: str,
) -> tuple[Any, Any]:
    """(tile row, error) for the selected filter: activation + three back-projections."""
    chosen = _selected(selection, acts)
    if chosen is None or not model or not image_id:
        return None, None
    layer, index = chosen
    srcs: dict[str, str | None] = {
        "activation": browser_url(acts["channel_url_template"].replace("{index}", str(index)))
    }
    captions: dict[str, str] = {}
    try:
        data = image_bytes(image_id, get_settings().data_dir)
        client = get_client()
        for method in MAP_METHODS:
            if method == "gradcam":
                out = client.attributions(model, data, layer=layer, method="gradcam", untrained=untrained)
                cls = out["maps"][0]["class_index"]
                captions[method] = f"class {cls}"
            else:
                out = client.attributions(
                    model,
                    data,
                    layer=layer,
                    channel=index,
                    method=method,
                    position=position,
                    untrained=untrained,
                )
                pos = out["maps"][0]["position"]
                captions[method] = f"from {tuple(pos)}" if pos else "whole map"
            srcs[method] = browser_url(out["png_url"])
    except UnknownImageError as err:
        return None, error_alert(str(err), "Image")
    except ApiError as err:
        return attribution_row(srcs, captions), error_alert(
            str(err), f"Cannot project filter {index} of {layer}"
        )
    return attribution_row(srcs, captions), None


def start_deepvis(
    selection: dict[str, Any] | None,
    acts: dict[str, Any] | None,
    model: str | None,
    untrained: bool,
    preset: str,
    steps: Any,
    seed: Any,
) -> tuple[Any, bool, bool, str, Any]:
    """(job store, poll disabled, cancel disabled, status, progress) after pressing Run."""
    chosen = _selected(selection, acts)
    if chosen is None or not model:
        return no_update, True, True, "Open a filter first.", "0"
    layer, index = chosen
    try:
        steps_i, seed_i = int(steps), int(seed)
    except (TypeError, ValueError):
        return no_update, True, True, "Steps and seed must be whole numbers.", "0"
    body = {"target": {"layer": layer, "channel": index}, "preset": preset, "steps": steps_i, "seed": seed_i}
    try:
        job = get_client().start_deepvis(model, body, untrained=untrained)
    except ApiError as err:
        return no_update, True, True, f"Cannot start DeepVis: {err}", "0"
    store = {"job_id": job["job_id"], "frame_index": 0, "layer": layer, "channel": index}
    status = (
        "Cached result."
        if job.get("cached")
        else f"Started: {layer} filter {index}, {preset}, {steps_i} steps."
    )
    return store, False, False, status, "0"


def poll_deepvis(job_store: dict[str, Any] | None) -> tuple[Any, ...]:
    """(image src, progress, status, poll disabled, cancel disabled, job store) on each tick."""
    if not job_store:
        return no_update, no_update, no_update, True, True, no_update
    try:
        job = get_client().job(job_store["job_id"], since=job_store.get("frame_index", 0))
    except ApiError as err:
        return no_update, no_update, f"Lost the job: {err}", True, True, no_update
    done = job["status"] in TERMINAL
    src: Any = no_update
    store = dict(job_store)
    if job.get("frame"):
        src = browser_url(job["frame"]["image_url"])
        store["frame_index"] = job["frame_index"]
    if job["status"] == "succeeded" and job.get("result"):
        src = browser_url(job["result"]["image_url"])
    return src, str(job.get("progress", 0.0)), job_status_text(job), done, done, store


def cancel_deepvis(job_store: dict[str, Any] | None) -> str:
    if not job_store:
        return "Nothing to cancel."
    try:
        get_client().cancel_job(job_store["job_id"])
    except ApiError as err:
        return f"Cannot cancel: {err}"
    return "Cancelling…"


def dataset_options() -> tuple[list[dict[str, str]], Any]:
    """(dropdown options, error) of the stored and built-in datasets."""
    try:
        sets = get_client().datasets()
    except ApiError as err:
        return [], error_alert(str(err), "Datasets")
    return [{"label": f"{d['name']} ({d['num_images']} images)", "value": d["id"]} for d in sets], None


def start_top_images(
    selection: dict[str, Any] | None,
    acts: dict[str, Any] | None,
    model: str | None,
    untrained: bool,
    dataset: str | None,
) -> tuple[Any, bool, str, Any]:
    """(job store, poll disabled, status, grid) after pressing 'Find top 9'."""
    chosen = _selected(selection, acts)
    if chosen is None or not model:
        return no_update, True, "Open a filter first.", no_update
    if not dataset:
        return no_update, True, "Pick a dataset first.", no_update
    layer, index = chosen
    body = {"dataset": dataset, "layer": layer, "channel": index}
    try:
        job = get_client().start_top_images(model, body, untrained=untrained)
    except ApiError as err:
        return no_update, True, f"Cannot search {dataset}: {err}", no_update
    return {"job_id": job["job_id"]}, False, f"Scanning {job['num_images']} images…", None


def poll_top_images(job_store: dict[str, Any] | None) -> tuple[Any, Any, bool]:
    """(status, grid, poll disabled) on each tick."""
    if not job_store:
        return no_update, no_update, True
    try:
        job = get_client().job(job_store["job_id"])
    except ApiError as err:
        return f"Lost the job: {err}", no_update, True
    if job["status"] == "succeeded":
        images = job["result"]["images"]
        return (
            f"The {len(images)} images that excite this filter most.",
            top_images_grid(images, browser_url),
            True,
        )
    if job["status"] in ("failed", "cancelled"):
        return job_status_text(job), no_update, True
    return f"{job.get('message') or 'Queued'} ({job.get('progress', 0):.0%})", no_update, False


def _untrained(toggle: list[str] | None) -> bool:
    return "untrained" in (toggle or [])


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
    return show_attributions(selection, acts, image_id, model, _untrained(toggle), position or "max")


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
    prevent_initial_call=True,
)
def on_start_deepvis(_clicks, selection, acts, model, toggle, preset, steps, seed):
    return start_deepvis(selection, acts, model, _untrained(toggle), preset, steps, seed)


@callback(
    Output("deepvis-image", "src"),
    Output("deepvis-progress", "value", allow_duplicate=True),
    Output("deepvis-status", "children", allow_duplicate=True),
    Output("deepvis-poll", "disabled", allow_duplicate=True),
    Output("deepvis-cancel", "disabled", allow_duplicate=True),
    Output("deepvis-job", "data", allow_duplicate=True),
    Input("deepvis-poll", "n_intervals"),
    State("deepvis-job", "data"),
    prevent_initial_call=True,
)
def on_poll_deepvis(_n, job_store):
    return poll_deepvis(job_store)


@callback(
    Output("deepvis-status", "children", allow_duplicate=True),
    Input("deepvis-cancel", "n_clicks"),
    State("deepvis-job", "data"),
    prevent_initial_call=True,
)
def on_cancel_deepvis(_clicks, job_store):
    if ctx.triggered_id != "deepvis-cancel":
        return no_update
    return cancel_deepvis(job_store)


__all__ = ["cancel_deepvis", "poll_deepvis", "show_attributions", "start_deepvis"]


@callback(
    Output("top-dataset", "options"),
    Output("top-status", "children", allow_duplicate=True),
    Input("selected-filter", "data"),
    prevent_initial_call="initial_duplicate",
)
def on_dataset_options(_selection):
    return dataset_options()


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
    return start_top_images(selection, acts, model, _untrained(toggle), dataset)


@callback(
    Output("top-status", "children", allow_duplicate=True),
    Output("top-grid", "children", allow_duplicate=True),
    Output("top-poll", "disabled", allow_duplicate=True),
    Input("top-poll", "n_intervals"),
    State("top-job", "data"),
    prevent_initial_call=True,
)
def on_poll_top_images(_n, job_store):
    return poll_top_images(job_store)
