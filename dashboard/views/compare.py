"""What the compare page shows, as plain functions of its inputs (the callbacks only wire them).

Two sides - a model and its weights (the zoo's or a stored checkpoint) each - on one image: ``run`` asks
``POST /api/v1/compare`` for both sides' predictions and a layer's filter grid and, for two checkpoints of one
model, the filters that changed most. ``start_cka`` starts the API's CKA job over a dataset and ``poll_cka``
draws its map: which layer of A corresponds to which of B. The mode picks a preset: two checkpoints of
digits_cnn on a digit, or Lite0 and Lite1 on a photo.
"""

from __future__ import annotations

from typing import Any

from dash import html, no_update

from dashboard.api_client import ApiError, get_client
from dashboard.components.common import error_alert, notice
from dashboard.components.compare import (
    CHECKPOINT_WEIGHTS,
    best_matches,
    changed_filters,
    checkpoint_options,
    side_panel,
)
from dashboard.figures import message_figure
from dashboard.figures.compare import cross_cka_figure
from dashboard.images import UnknownImageError, gallery, image_bytes
from dashboard.jobs import poll_job, start_job
from dashboard.settings import get_settings
from dashboard.views.attributions import dataset_options
from dashboard.views.common import model_option, pick
from dashboard.views.explore import accept_upload

MODES = [("Two checkpoints of one model", "checkpoints"), ("Two models", "models")]
PRESETS: dict[str, dict[str, str]] = {
    "checkpoints": {"model_a": "digits_cnn", "checkpoint_a": "epoch_01", "checkpoint_b": "final", "image": "sample:digit3"},
    "models": {"model_a": "efficientnet_lite0", "model_b": "efficientnet_lite1", "image": "sample:chelsea", "dataset": "lfw_subset"},
}  # fmt: skip
CKA_IMAGES = 48  # a spread of the dataset: Lite0 against Lite1 took 5 to 15 s on 2 busy CPU cores
DIGITS_SIZE = 32  # models with inputs this small or smaller are compared on the built-in digits


def load_page(initial: dict[str, Any] | None) -> tuple[list, str, list, list, Any]:
    """(model options, mode, image options, dataset options, error) when the page opens."""
    initial = initial or {}
    mode = pick(initial.get("mode"), [m for _label, m in MODES], "checkpoints")
    images = [{"label": s.title, "value": s.id} for s in gallery()]
    try:
        models = get_client().models()
    except ApiError as err:
        return [], mode, images, [], error_alert(str(err), "Cannot list the models")
    usable = [m for m in models if m.get("kind", "classifier") != "generator" and m.get("pretrained")]
    datasets, error = dataset_options()
    return [model_option(m) for m in usable], mode, images, datasets, error


def preset(mode: str | None) -> tuple[str, str]:
    """(model A, image) of a mode's preset."""
    p = PRESETS.get(mode or "", PRESETS["checkpoints"])
    return p["model_a"], p["image"]


def model_b_for(
    mode: str | None, model_a: str | None, model_b: str | None, options: list[dict[str, Any]] | None
) -> tuple[str | None, bool, bool]:
    """(model B, B's model picker disabled, B's layer picker disabled): A's model for two checkpoints; for
    two models, the current B when it differs from A, else the preset's other model."""
    if mode == "checkpoints":
        return model_a, True, True
    ids = [o["value"] for o in options or [] if o["value"] != model_a]
    other = (
        PRESETS["models"]["model_b"]
        if model_a != PRESETS["models"]["model_b"]
        else PRESETS["models"]["model_a"]
    )
    return pick(model_b, ids, other), False, False


def layer_options(layers: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every layer with channels, as ``name · type · shape``."""
    return [
        {
            "label": f"{la['name']} · {la['type']} · {'×'.join(map(str, la['output_shape']))}",
            "value": la["name"],
        }
        for la in layers
        if la.get("channels")
    ]


def side_choices(model: str | None, mode: str | None, which: str) -> tuple[list, Any, list, Any]:
    """(checkpoint options, checkpoint, layer options, layer) of one side's model: its stored checkpoints and
    layers; in checkpoints mode A starts at the preset's early snapshot and B at its final one."""
    if not model:
        return [], None, [], None
    client = get_client()
    try:
        files = client.checkpoints(model)
        layers = client.layers(model)["layers"]
        card = client.model_card(model)
    except ApiError:
        return checkpoint_options([]), CHECKPOINT_WEIGHTS, [], None
    options = checkpoint_options(files)
    wanted = PRESETS["checkpoints"][f"checkpoint_{which}"] if mode == "checkpoints" else None
    fallback = files[0] if which == "a" and files else CHECKPOINT_WEIGHTS
    checkpoint = pick(wanted, [o["value"] for o in options], fallback)
    layer_opts = layer_options(layers)
    layer = pick(card.get("default_layer"), [o["value"] for o in layer_opts])
    return options, checkpoint, layer_opts, layer


def _side(model: str | None, checkpoint: str | None) -> dict[str, Any]:
    return {
        "model": model,
        **({"checkpoint": checkpoint} if checkpoint and checkpoint != CHECKPOINT_WEIGHTS else {}),
    }


def run(
    mode: str | None,
    model_a: str | None,
    checkpoint_a: str | None,
    layer_a: str | None,
    model_b: str | None,
    checkpoint_b: str | None,
    layer_b: str | None,
    image_id: str | None,
) -> tuple[Any, Any, Any, Any]:
    """(side A, side B, changed filters, error) for the Compare button."""
    if not model_a or not model_b or not image_id:
        return (
            no_update,
            no_update,
            no_update,
            error_alert("Pick both models and an image.", "Cannot compare"),
        )
    try:
        data = image_bytes(image_id, get_settings().data_dir)
    except UnknownImageError as err:
        return None, None, None, error_alert(str(err), "Cannot compare")
    a, b = _side(model_a, checkpoint_a), _side(model_b, checkpoint_b)
    form = {
        "model_a": a["model"],
        "checkpoint_a": a.get("checkpoint", ""),
        "layer_a": layer_a or "",
        "model_b": b["model"],
        "checkpoint_b": b.get("checkpoint", ""),
        "layer_b": "" if mode == "checkpoints" else layer_b or "",
    }
    try:
        reply = get_client().compare(data, form)
    except ApiError as err:
        return None, None, None, error_alert(str(err), "Cannot compare")
    side_a, side_b = reply["sides"]
    labels = (side_a["label"].partition(":")[2], side_b["label"].partition(":")[2])
    return side_panel(side_a, "a"), side_panel(side_b, "b"), changed_filters(reply["changed"], labels), None


def start_cka(
    model_a: str | None,
    checkpoint_a: str | None,
    model_b: str | None,
    checkpoint_b: str | None,
    dataset: str | None,
    max_images: int | None,
) -> tuple[Any, bool, str, Any, Any]:
    """(job store, poll disabled, status, figure, matches) for the CKA button."""
    if not model_a or not model_b or not dataset:
        return None, True, "Pick both models and a dataset.", no_update, no_update
    body = {
        "a": _side(model_a, checkpoint_a),
        "b": _side(model_b, checkpoint_b),
        "dataset": dataset,
        "max_images": int(max_images or CKA_IMAGES),
    }
    started = start_job(lambda: get_client().start_cka(body))
    if started.error:
        return None, True, f"Cannot compare the layers: {started.error}", no_update, None
    reply = started.reply
    status = f"Comparing the layers of {reply['a']} and {reply['b']} on {reply['num_images']} images of {reply['dataset']}…"
    waiting = message_figure("Extracting features…", height=360)
    return started.store, False, status, waiting, None


def poll_cka(store: dict[str, Any] | None) -> tuple[Any, Any, bool, str]:
    """(figure, matches, poll disabled, status) on each tick of the CKA job."""
    poll = poll_job(store)
    if poll is None:
        return no_update, no_update, True, no_update
    if poll.error:
        return no_update, None, True, f"Lost the job: {poll.error}"
    job = poll.job
    if not poll.done:
        return no_update, no_update, False, f"{job.get('message') or 'Queued'} ({job.get('progress', 0):.0%})"
    if not poll.succeeded:
        return no_update, notice(f"The comparison {job['status']}: {job.get('error') or ''}"), True, ""
    result = job["result"]
    status = f"Done: {len(result['layers_a'])} × {len(result['layers_b'])} layers over {result['num_images']} images."
    return cross_cka_figure(result), best_matches(result), True, status


def default_dataset(
    dataset: str | None, options: list[dict[str, Any]] | None, model_a: str | None
) -> str | None:
    """The CKA dataset: the current one, else the built-in digits for digits_cnn and the preset's for photos."""
    ids = [o["value"] for o in options or []]
    if dataset in ids:
        return dataset
    return pick(PRESETS["models"]["dataset"] if model_a != "digits_cnn" else "digits", ids)


def upload_image(
    contents: str | None, filename: str | None, model_a: str | None, options: list[dict[str, Any]] | None
) -> tuple[Any, Any, Any]:
    """(image options, image, status) for a dropped file: checked by the API as Explore checks it, kept, added
    to the image picker and chosen; a rejected file leaves the picker as it was."""
    if not contents:
        return no_update, no_update, no_update
    image_id, status = accept_upload(contents, filename, model_a, False)
    if image_id is no_update:
        return no_update, no_update, status
    options = [o for o in options or [] if o["value"] != image_id]
    return [*options, {"label": f"Uploaded: {filename or 'image'}", "value": image_id}], image_id, status


def page_note(mode: str | None) -> html.P:
    """What the page compares in ``mode``."""
    if mode == "checkpoints":
        text = "Same architecture, two sets of weights: the predictions, the layer's maps and the filters that moved most."
    else:
        text = "Two architectures on one image, and below the CKA map of which layer of A corresponds to which of B."
    return html.P(text, className="cl-caption")
