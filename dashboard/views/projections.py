"""What the projections page shows, as plain functions of its inputs (the callbacks only wire them).

A running t-SNE is steered, not restarted: moving the perplexity or epsilon slider PATCHes the job and
the next frames move the points in place (the figure keeps its ``uirevision``); once a run has
finished, a slider move starts a new run that reuses the cached features and neighbour graph.
"""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

from dash import dcc, html, no_update

from dashboard.api_client import ApiError, get_client
from dashboard.components.common import error_alert, notice
from dashboard.components.projection import (
    collect_params,
    epsilon_from_slider,
    hover_card,
    param_controls,
    purity_panel,
    status_line,
)
from dashboard.figures import projection_figure
from dashboard.images import png_data_url, store_upload
from dashboard.jobs import poll_job, start_job
from dashboard.settings import get_settings
from dashboard.state import ExploreState
from dashboard.views.common import model_option, pick

# --- pickers -------------------------------------------------------------------------------------------


def dataset_options(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"label": f"{d['name']} ({d['num_images']:,} images, {d['num_classes']} classes)", "value": d["id"]}
        for d in datasets
    ]


def load_pickers(initial: dict[str, Any] | None) -> tuple[list, Any, list, Any, dict, Any]:
    """Dataset and model options (with the initial or a sensible default selected), and the method specs."""
    initial = initial or {}
    client = get_client()
    try:
        datasets = client.datasets()
        models = client.models()
        methods = client.projection_methods()
    except ApiError as err:
        return [], None, [], None, {}, error_alert(str(err))
    dataset = pick(initial.get("dataset"), [d["id"] for d in datasets], "digits")
    usable = [m for m in models if m.get("pretrained") or m.get("weights_status") == "available"] or models
    model = pick(initial.get("model"), [m["id"] for m in usable], "digits_cnn")
    return dataset_options(datasets), dataset, [model_option(m) for m in usable], model, methods, None


def layer_options(model: str | None, initial_layer: str | None = None) -> tuple[list, Any]:
    """Layers worth projecting (conv, linear, activation, pool, block outputs); penultimate by default."""
    if not model:
        return [], None
    try:
        info = get_client().layers(model)
    except ApiError:
        return [], None
    layers = [lay for lay in info["layers"] if lay.get("output_shape")]
    options = [
        {"label": f"{lay['name']} · {lay['type']} {tuple(lay['output_shape'])}", "value": lay["name"]}
        for lay in layers
    ]
    names = [lay["name"] for lay in layers]
    if initial_layer in names:
        return options, initial_layer
    heads = [
        lay["name"] for lay in layers if lay["kind"] in ("activation", "pool", "norm") and lay["depth"] <= 2
    ]
    default = heads[-1] if heads else (names[-2] if len(names) > 1 else (names or [None])[0])
    return options, default


def dataset_info(dataset: str | None, options: list[dict[str, Any]] | None) -> str:
    """The picked dataset's label (name, size, classes) under the picker."""
    return next((o["label"] for o in options or [] if o["value"] == dataset), "")


def method_controls(method: str, methods: dict[str, Any] | None) -> tuple[list, dict[str, str]]:
    """(the method's parameter controls, the style of the t-SNE sliders: shown for t-SNE only)."""
    specs = (methods or {}).get(method, [])
    return param_controls(method, specs), ({} if method == "tsne" else {"display": "none"})


def epsilon_label(value: float | None) -> str:
    return f"ε = {epsilon_from_slider(value)}"


# --- upload --------------------------------------------------------------------------------------------


def upload_dataset(
    contents: list[str] | None, filenames: list[str] | None, name: str | None
) -> tuple[Any, Any, Any]:
    """A dropped zip becomes a dataset with its folders as classes; dropped images an unlabelled one."""
    if not contents:
        return no_update, no_update, no_update
    files = []
    for content, fname in zip(contents, filenames or [], strict=False):
        try:
            files.append((fname, base64.b64decode(content.split(",", 1)[1])))
        except (IndexError, ValueError):
            return no_update, no_update, error_alert(f"{fname} could not be read.")
    stem = (filenames or ["upload"])[0].rsplit(".", 1)[0]
    dataset_name = (name or "").strip() or stem
    client = get_client()
    try:
        if len(files) == 1 and zipfile.is_zipfile(io.BytesIO(files[0][1])):
            info = client.create_dataset(dataset_name, archive=files[0])
        else:
            info = client.create_dataset(dataset_name, images=files)
        datasets = client.datasets()
    except ApiError as err:
        return no_update, no_update, error_alert(str(err), "Upload refused")
    return (
        dataset_options(datasets),
        info["id"],
        notice(f"Created '{info['id']}': {info['num_images']} images in {info['num_classes']} classes."),
    )


# --- run, steer, stop ----------------------------------------------------------------------------------


def number_list(text: str | None, what: str, kind: type = float) -> list[Any] | None:
    """``"0, 1, 2"`` -> [0, 1, 2]; empty -> None; anything else raises ValueError with a readable message."""
    if not text or not str(text).strip():
        return None
    out = []
    for part in str(text).replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(
                f"{what}: '{part}' is not a number; write numbers separated by commas."
            ) from None
        if kind is int and not value.is_integer():
            raise ValueError(f"{what}: '{part}' is not a whole number.")
        out.append(int(value) if kind is int else value)
    return out or None


def projection_body(
    dataset,
    model,
    layer,
    pool,
    method,
    perplexity,
    epsilon,
    ids,
    values,
    seeds=None,
    baseline=None,
    sweep=None,
) -> dict[str, Any]:
    """The POST /projections body; a malformed cautions field gives ``{"error": message}`` instead."""
    params = collect_params(ids or [], values or [])
    if method == "tsne":
        params["perplexity"] = perplexity
        params["learning_rate"] = epsilon_from_slider(epsilon)
    body: dict[str, Any] = {
        "model": model,
        "layer": layer,
        "dataset": dataset,
        "method": method,
        "params": params,
        "pool": pool,
    }
    try:
        seed_list = number_list(seeds, "seeds", int)
        perplexities = number_list(sweep, "perplexity sweep")
    except ValueError as err:
        return {"error": str(err)}
    if seed_list:
        body["seeds"] = seed_list
    if baseline and "noise" in baseline:
        body["baseline"] = "noise"
    if perplexities:
        body["perplexities"] = perplexities
    return body


def guidance(dataset: str | None) -> Any:
    """The perplexity range that suits the dataset's N, with the reason (from the API)."""
    if not dataset:
        return ""
    client = get_client()
    try:
        n = next((d["num_images"] for d in client.datasets() if d["id"] == dataset), None)
        if n is None or n < 5:
            return ""
        g = client.perplexity_guidance(int(n))
    except ApiError as err:
        return error_alert(str(err))
    return html.Div(
        [
            html.Strong(
                f"Perplexity for N = {g['n']:,}: {g['min']:g} to {g['max']:g} (suggested {g['suggested']:g})"
            ),
            html.Div(g["reason"]),
        ],
        id="proj-guidance-text",
    )


def run_or_steer(
    trigger: str | None, job: dict[str, Any] | None, body: dict[str, Any], running: bool
) -> tuple[Any, Any, Any, Any, Any]:
    """(job store, poll disabled, error, points reset, result reset) after Run, Stop or a slider move."""
    client = get_client()
    job = job or {}

    def refused(err: ApiError) -> tuple[Any, Any, Any, Any, Any]:
        return no_update, no_update, error_alert(str(err)), no_update, no_update

    if "error" in body:
        if trigger == "proj-run":
            return no_update, no_update, error_alert(body["error"]), no_update, no_update
        body = {}

    try:
        if trigger == "proj-stop":
            if job.get("job_id") and running:
                client.cancel_job(job["job_id"])
            return no_update, no_update, None, no_update, no_update
        if trigger in ("proj-perplexity", "proj-epsilon"):
            if not body or body["method"] != "tsne" or not job.get("job_id") or job.get("method") != "tsne":
                return no_update, no_update, None, no_update, no_update  # used by the next Run
            if running:
                key = "perplexity" if trigger == "proj-perplexity" else "learning_rate"
                client.steer_projection(job["job_id"], {key: body["params"][key]})
                return {**job, "steered": True}, False, None, no_update, no_update
    except ApiError as err:
        return refused(err)
    if not all(body.get(k) for k in ("dataset", "model", "layer")):
        return (
            no_update,
            no_update,
            error_alert("Pick a dataset, a model and a layer first."),
            no_update,
            no_update,
        )
    started = start_job(
        lambda: client.start_projection(body),
        method=body["method"],
        dataset=body["dataset"],
        model=body["model"],
        since=None,
    )
    if started.error:
        return refused(started.error)
    return started.store, False, None, None, None


# --- frames --------------------------------------------------------------------------------------------


def poll(job: dict[str, Any] | None, points: dict[str, Any] | None) -> tuple[Any, Any, Any, Any, Any, Any]:
    """(coords, points, result, poll disabled, status, job store) from the job's latest state."""
    poll = poll_job(job)
    if poll is None:
        return no_update, no_update, no_update, True, no_update, no_update
    if poll.error:
        return no_update, no_update, no_update, True, error_alert(str(poll.error)), no_update
    state = poll.job
    coords = no_update
    frame = state.get("frame")
    new_job = no_update
    if frame and frame.get("coords"):
        coords = frame["coords"]
        new_job = {
            **job,
            "since": state["frame_index"],
            "last_frame": {k: v for k, v in frame.items() if k != "coords"},
        }
    if points is None and (frame or state["status"] == "succeeded"):
        try:
            points = get_client().projection_points(job["job_id"])
        except ApiError:
            points = None
    result = no_update
    if poll.succeeded and state.get("result"):
        res = state["result"]
        coords = res["coords"]
        result = {k: v for k, v in res.items() if k not in ("coords", "labels", "predictions")}
        if res.get("baseline"):
            result["real_coords"] = res["coords"]  # the noise baseline is plotted beside the real one
    status_state = {**state, "frame": frame or (job.get("last_frame") if isinstance(job, dict) else None)}
    status = status_line(status_state)
    if state["status"] == "failed":
        status = html.Div([status, error_alert(state.get("error") or "the job failed")])
    return coords, points if points is not None else no_update, result, poll.done, status, new_job


def scatter(coords, points, color_by, activation, job) -> Any:
    if not coords:
        return no_update
    points = points or {}
    values = (activation or {}).get("values") if color_by == "filter" else None
    title = ""
    if job:
        title = f"{job.get('method', '')} · {job.get('model', '')} on {job.get('dataset', '')}"
    return projection_figure(
        coords,
        color_by=color_by,
        labels=points.get("labels"),
        classes=points.get("classes", ()),
        predictions=points.get("predictions"),
        model_labels=points.get("model_labels", ()),
        values=values,
        value_name=f"filter {(activation or {}).get('channel', '')}",
        title=title,
    )


def filter_activation(color_by: str, channel: int | None, job: dict[str, Any] | None) -> tuple[Any, Any]:
    if color_by != "filter" or not job or not job.get("job_id") or channel is None:
        return no_update, None
    try:
        return get_client().projection_activation(job["job_id"], int(channel)), None
    except ApiError as err:
        return None, error_alert(str(err))


def purity(result: dict[str, Any] | None) -> Any:
    if not result:
        return html.Div("Shown when a run finishes.", className="cl-notice")
    return purity_panel(result)


# --- hover, click, export ------------------------------------------------------------------------------


def _point_index(data: dict[str, Any] | None) -> int | None:
    try:
        return int(data["points"][0]["customdata"])
    except (TypeError, KeyError, IndexError, ValueError):
        return None


def hover(
    hover_data: dict[str, Any] | None, job: dict[str, Any] | None, points: dict[str, Any] | None
) -> Any:
    index = _point_index(hover_data)
    if index is None or not job:
        return no_update
    try:
        thumb = get_client().dataset_thumbnail(job["dataset"], index)
    except ApiError as err:
        return error_alert(str(err))
    points = points or {}
    labels, classes = points.get("labels") or [], points.get("classes") or []
    label = classes[labels[index]] if index < len(labels) and labels[index] < len(classes) else "?"
    preds, names = points.get("predictions"), points.get("model_labels") or []
    predicted = None
    if preds is not None and index < len(preds):
        predicted = names[preds[index]] if preds[index] < len(names) else str(preds[index])
    src = png_data_url(thumb)
    return hover_card(src, index, label, predicted)


def open_in_explore(click_data: dict[str, Any] | None, job: dict[str, Any] | None) -> Any:
    """The clicked image, stored as an upload, opened on the explore page with the same model."""
    index = _point_index(click_data)
    if index is None or not job:
        return no_update
    try:
        data = get_client().dataset_image(job["dataset"], index)
    except ApiError:
        return no_update
    image_id = store_upload(data, get_settings().data_dir)
    return "/" + ExploreState(model=job.get("model"), image=image_id).query()


def export_csv(job: dict[str, Any] | None) -> Any:
    if not job or not job.get("job_id"):
        return no_update
    try:
        text = get_client().projection_csv(job["job_id"])
    except ApiError:
        return no_update
    return dcc.send_string(text, f"projection-{job.get('dataset', '')}-{job.get('method', '')}.csv")
