"""What the filter insights show (attribution maps side by side, a DeepVis job with live frames, a
dataset's top images), as plain functions of the explore page's inputs; the callbacks only wire them."""

from __future__ import annotations

from typing import Any

from dash import no_update

from dashboard.api_client import ApiError, browser_url, get_client
from dashboard.components.attributions import attribution_row, job_status_text, top_images_grid, verdict_card
from dashboard.components.common import error_alert, notice
from dashboard.images import UnknownImageError, image_bytes, latent_seed
from dashboard.jobs import poll_job, start_job
from dashboard.settings import get_settings

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
    if latent_seed(image_id) is not None:
        return None, notice(
            "A generator's input is a latent vector, not an image: the maps that trace a filter back to the "
            "input pixels are for image models (open the discriminator to see them on digits)."
        )
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
    target_kind: str = "filter",
    class_index: Any = None,
) -> tuple[Any, bool, bool, str, Any]:
    """(job store, poll disabled, cancel disabled, status, progress) after pressing Run: a render of the
    selected filter, or with ``target_kind='class'`` of class ``class_index``."""
    try:
        steps_i, seed_i = int(steps), int(seed)
    except (TypeError, ValueError):
        return no_update, True, True, "Steps and seed must be whole numbers.", "0"
    if not model:
        return no_update, True, True, "Pick a model first.", "0"
    if target_kind == "class":
        try:
            cls = int(class_index)
        except (TypeError, ValueError):
            return no_update, True, True, "The class must be a whole number (e.g. 1 for goldfish).", "0"
        target: dict[str, Any] = {"class_index": cls}
        what, where = f"class {cls}", {"class_index": cls}
    else:
        chosen = _selected(selection, acts)
        if chosen is None:
            return no_update, True, True, "Open a filter first.", "0"
        layer, index = chosen
        target = {"layer": layer, "channel": index}
        what, where = f"{layer} filter {index}", {"layer": layer, "channel": index}
    body = {"target": target, "preset": preset, "steps": steps_i, "seed": seed_i}
    started = start_job(
        lambda: get_client().start_deepvis(model, body, untrained=untrained), since=0, **where
    )
    if started.error:
        return no_update, True, True, f"Cannot start DeepVis: {started.error}", "0"
    status = (
        "Cached result." if started.reply.get("cached") else f"Started: {what}, {preset}, {steps_i} steps."
    )
    return started.store, False, False, status, "0"


def poll_deepvis(job_store: dict[str, Any] | None) -> tuple[Any, ...]:
    """(image src, progress, status, poll disabled, cancel disabled, job store, verdict) on each tick."""
    poll = poll_job(job_store)
    if poll is None:
        return no_update, no_update, no_update, True, True, no_update, no_update
    if poll.error:
        return no_update, no_update, f"Lost the job: {poll.error}", True, True, no_update, no_update
    job = poll.job
    src: Any = no_update
    store = dict(job_store)
    if job.get("frame"):
        src = browser_url(job["frame"]["image_url"])
        store["since"] = job["frame_index"]
    verdict: Any = None
    if poll.succeeded and job.get("result"):
        src = browser_url(job["result"]["image_url"])
        verdict = verdict_card(job["result"])
    status = job_status_text(job)
    return src, str(job.get("progress", 0.0)), status, poll.done, poll.done, store, verdict


def cancel_deepvis(job_store: dict[str, Any] | None) -> str:
    """The status after the Cancel button."""
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
    started = start_job(lambda: get_client().start_top_images(model, body, untrained=untrained))
    if started.error:
        return no_update, True, f"Cannot search {dataset}: {started.error}", no_update
    return started.store, False, f"Scanning {started.reply['num_images']} images…", None


def poll_top_images(job_store: dict[str, Any] | None) -> tuple[Any, Any, bool]:
    """(status, grid, poll disabled) on each tick."""
    poll = poll_job(job_store)
    if poll is None:
        return no_update, no_update, True
    if poll.error:
        return f"Lost the job: {poll.error}", no_update, True
    job = poll.job
    if poll.succeeded:
        images = job["result"]["images"]
        return (
            f"The {len(images)} images that excite this filter most.",
            top_images_grid(images, browser_url),
            True,
        )
    if poll.done:
        return job_status_text(job), no_update, True
    return f"{job.get('message') or 'Queued'} ({job.get('progress', 0):.0%})", no_update, False
