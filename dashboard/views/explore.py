"""What the explore page shows, as plain functions of the page's inputs (the callbacks only wire them).

Every function takes the values of Dash inputs and states and returns the values of its outputs; it
calls the API through ``dashboard.api_client`` and turns every ``ApiError`` into a readable message in
the page. Unit tests call these functions directly with a real API behind the client.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from dash import dcc, html, no_update

from dashboard.api_client import ApiError, CallTimer, browser_url, get_client
from dashboard.components.common import GRAPH_CONFIG, badge, error_alert, notice
from dashboard.components.filter_detail import filter_stats, neighbour
from dashboard.components.filter_grid import filter_grid, grid_summary, sort_order
from dashboard.components.layer_browser import layer_browser
from dashboard.components.model_card import model_card
from dashboard.components.neuron import neuron_link
from dashboard.figures import filter_weights_figure, message_figure, predictions_figure
from dashboard.images import (
    MAX_SEED,
    UnknownImageError,
    image_bytes,
    image_title,
    latent_id,
    latent_seed,
    store_upload,
)
from dashboard.layers import group_layers, weights_source_layer
from dashboard.settings import get_settings
from dashboard.state import ExploreState
from dashboard.views.common import pick

UNTRAINED_HINT = " Tick 'random weights (untrained)' to explore the architecture without trained weights."


def _with_hint(err: ApiError) -> str:
    return str(err) + (UNTRAINED_HINT if err.error == "WeightsUnavailableError" else "")


# --- models --------------------------------------------------------------------------------------------


MODEL_GROUPS = (("built-in", "Built-in models"), ("lab", "Lab models"))


def model_options(models: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The picker's options: built-in models, then the lab's own, each group under a disabled heading."""
    out: list[dict[str, Any]] = []
    for group, title in MODEL_GROUPS:
        members = [m for m in models if (m.get("origin") or {}).get("group", "built-in") == group]
        if not members:
            continue
        out.append({"label": f"── {title} ──", "value": f"__group__{group}", "disabled": True})
        for m in members:
            what = (m.get("origin") or {}).get("class") if group == "lab" else m["architecture"]
            out.append(
                {
                    "label": f"{m['id']} · {what or m['architecture']}"
                    + ("" if m.get("pretrained") else " (no trained weights here)"),
                    "value": m["id"],
                }
            )
    return out


def load_models(initial: dict[str, Any] | None) -> tuple[list[dict[str, Any]], str | None, Any]:
    """Model picker options and the model to show: the link's, else the default model."""
    wanted = (initial or {}).get("model")
    try:
        models = get_client().models()
    except ApiError as err:
        return [], None, error_alert(str(err), "Cannot list models")
    ids = [m["id"] for m in models]
    if not ids:
        return [], None, error_alert("The API has no models registered.", "No models")
    value = pick(wanted, ids, get_settings().default_model)
    message = (
        notice(f"Unknown model '{wanted}' in the link; showing {value}.")
        if wanted and wanted != value
        else None
    )
    return model_options(models), value, message


def show_model(model: str | None, untrained: bool, current_layer: str | None) -> tuple[Any, Any, Any]:
    """The model card, the layer list and the layer to show (kept when the model has it)."""
    if not model:
        return no_update, no_update, no_update
    client = get_client()
    try:
        card = client.model_card(model, untrained)
    except ApiError as err:
        return error_alert(str(err), f"Cannot load model '{model}'"), None, None
    try:
        layers = client.layers(model, untrained)["layers"]
    except ApiError as err:
        return [model_card(card), error_alert(_with_hint(err), "Cannot load layers")], None, None
    names = {layer["name"] for layer in layers}
    layer = current_layer if current_layer in names else card.get("default_layer")
    shown = {
        "model": model,
        "untrained": untrained,
        "layers": layers,
        "kind": card.get("kind"),
        "gan": card.get("gan"),
    }
    return model_card(card), shown, layer


def layers_view(layers_data: dict[str, Any] | None, layer: str | None) -> Any:
    """The layer browser of the shown model, the selected layer open and highlighted."""
    if not layers_data:
        return notice("Pick a model to list its layers.")
    return layer_browser(group_layers(layers_data["layers"]), layer)


def pick_layer(layer: str | None, layers_data: dict[str, Any] | None) -> Any:
    """The clicked layer, if the shown model has it."""
    names = {x["name"] for x in (layers_data or {}).get("layers", [])}
    return layer if layer in names else no_update


# --- image ---------------------------------------------------------------------------------------------


def decode_upload(contents: str) -> bytes:
    """The bytes of a ``dcc.Upload`` data URL; ValueError when it is not one."""
    _, sep, payload = contents.partition(",")
    if not sep:
        raise ValueError("The upload did not arrive as a data URL.")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("The upload could not be decoded.") from exc


def accept_upload(contents: str, filename: str | None, model: str | None, untrained: bool) -> tuple[Any, Any]:
    """Check an upload with the API (a predict call, cached there for the views that follow) and keep it.

    Returns (image id or no_update, status message). A rejected file leaves the current image in place.
    """
    name = filename or "upload"
    try:
        data = decode_upload(contents)
    except ValueError as err:
        return no_update, error_alert(str(err), f"Cannot use '{name}'")
    if not data:
        return no_update, error_alert("The file is empty.", f"Cannot use '{name}'")
    if not model:
        return no_update, error_alert("Pick a model first.", f"Cannot use '{name}'")
    timer = CallTimer()
    try:
        get_client().predict(model, data, filename=name, untrained=untrained, timer=timer)
    except ApiError as err:
        return no_update, error_alert(_with_hint(err), f"Cannot use '{name}'")
    image_id = store_upload(data, get_settings().data_dir)
    return image_id, html.Span(
        f"Using {name} ({len(data) / 1024:.0f} KiB).",
        className="cl-ok",
        **{"data-api-ms": f"{timer.total_ms:.1f}"},
    )


def choose_image(
    trigger: Any,
    gallery_clicked: bool,
    contents: str | None,
    filename: str | None,
    model: str | None,
    untrained: bool,
) -> tuple[Any, Any, Any]:
    """(image id, status, upload contents) after a gallery click or an upload; the upload is cleared so
    that the same file can be dropped again. ``trigger`` is Dash's ``triggered_id``."""
    if isinstance(trigger, dict):  # a gallery button: {"type": "gallery-item", "image": <id>}
        return (trigger["image"], None, no_update) if gallery_clicked else (no_update,) * 3
    if trigger == "image-upload" and contents:
        return (*accept_upload(contents, filename, model, untrained), None)
    return no_update, no_update, no_update


def input_kind(layers_data: dict[str, Any] | None, image_id: str | None, seed: Any) -> tuple[Any, Any, Any]:
    """(images hidden, latent box hidden, image id) for the shown model: a generator takes the latent of a
    seed instead of an image, every other model an image (a latent id is dropped when the model changes)."""
    if not layers_data:
        return no_update, no_update, no_update
    if layers_data.get("kind") == "generator":
        keep = latent_seed(image_id) is not None
        return True, False, no_update if keep else latent_id(seed if isinstance(seed, int) else 0)
    return False, True, None if latent_seed(image_id) is not None else no_update


def choose_latent(trigger: Any, seed: Any, image_id: str | None) -> tuple[Any, Any, Any]:
    """(image id, seed box value, status) after a seed is typed or 'Next seed' is pressed. The number box
    sends None for what is not a whole number in 0..2**32-1; the last good seed stays in use."""
    if trigger == "latent-next":
        current = latent_seed(image_id)
        nxt = 0 if current is None else (current + 1) % (MAX_SEED + 1)
        return latent_id(nxt), nxt, None
    if not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        return (
            no_update,
            no_update,
            error_alert(f"A seed is a whole number from 0 to {MAX_SEED}.", "Cannot use this seed"),
        )
    return (latent_id(seed) if latent_id(seed) != image_id else no_update), no_update, None


def _generated_predictions(seed: int, model: str, untrained: bool) -> tuple[Any, Any, Any, Any, Any]:
    """A generator's 'predictions': the image it makes from the seed's latent and its discriminator's score."""
    if untrained:
        note = "Random weights: the generator's output is noise; its layers are below."
        return message_figure(note, height=120), None, None, f"seed {seed} through {model}", None
    client = get_client()
    try:
        gan = client.model_card(model).get("gan")
        if not gan:
            raise ApiError(f"Model '{model}' is a generator of no GAN this API serves.")
        result = client.gan_generate(gan, {"seed": seed, "n": 1})
    except ApiError as err:
        return message_figure("No image."), None, None, None, error_alert(str(err), "Cannot generate")
    real = float(result["images"][0]["d_score"])
    scores = [
        {"label": "real", "probability": real, "index": 1},
        {"label": "fake", "probability": 1.0 - real, "index": 0},
    ]
    top1 = html.Div(
        [
            html.Span("Discriminator says ", title=result["discriminator"]),
            html.Strong("real" if real >= 0.5 else "fake", id="top1-label"),
            html.Span(f" (D = {real:.2f})"),
        ]
    )
    caption = f"generated from seed {seed}"
    return (
        predictions_figure(sorted(scores, key=lambda p: -p["probability"])),
        top1,
        browser_url(result["grid_url"]),
        caption,
        None,
    )


def show_predictions(
    image_id: str | None, model: str | None, untrained: bool, precision: str = "exact"
) -> tuple[Any, Any, Any, Any, Any]:
    """(figure, top-1 line, input preview src, caption, error) for an image id; the top-1 line carries a
    badge when the answer was computed at the fast precision."""
    if not model or not image_id:
        return message_figure("Pick a sample or drop an image.", height=120), None, None, None, None
    seed = latent_seed(image_id)
    if seed is not None:
        return _generated_predictions(seed, model, untrained)
    try:
        data = image_bytes(image_id, get_settings().data_dir)
        result = get_client().predict(model, data, untrained=untrained, precision=precision)
    except UnknownImageError as err:
        return message_figure("No image."), None, None, None, error_alert(str(err), "Image")
    except ApiError as err:
        return (
            message_figure("No predictions."),
            None,
            None,
            None,
            error_alert(_with_hint(err), "Cannot predict"),
        )
    figure, top1 = prediction_parts(result)
    caption = f"{image_title(image_id)} as {model} sees it"
    return figure, top1, browser_url(result["input_url"]), caption, None


def prediction_parts(result: dict[str, Any]) -> tuple[Any, Any]:
    """(bar chart, top-1 line) of the API's predict answer (for an image id or a camera frame)."""
    preds = result["predictions"]
    top = preds[0]
    top1 = html.Div(
        [
            html.Span("Top-1 "),
            html.Strong(top["label"], id="top1-label"),
            html.Span(f" {top['probability']:.1%}"),
            precision_badge(result.get("precision", "exact"), "predictions-precision"),
        ]
    )
    return predictions_figure(preds, untrained=result.get("untrained", False)), top1


# --- activations and the filter grid -------------------------------------------------------------------


def load_activations(
    image_id: str | None, model: str | None, untrained: bool, layer: str | None, precision: str = "exact"
) -> tuple[dict[str, Any] | None, Any]:
    """The API's activations answer (plus ``api_ms``) and an error or hint to show instead."""
    if not model or not layer:
        return None, None
    if not image_id:
        return None, notice("Pick a sample or drop an image to see this layer's filters.")
    timer = CallTimer()
    seed = latent_seed(image_id)
    try:
        data = None if seed is not None else image_bytes(image_id, get_settings().data_dir)
        acts = get_client().activations(
            model, data, layer, untrained=untrained, latent_seed=seed, precision=precision, timer=timer
        )
    except UnknownImageError as err:
        return None, error_alert(str(err), "Image")
    except ApiError as err:
        return None, error_alert(_with_hint(err), f"Cannot compute the activations of {layer}")
    acts.pop("predictions", None)
    acts["api_ms"] = round(timer.total_ms, 1)
    return acts, None


def precision_badge(precision: str, badge_id: str) -> Any:
    """A badge for answers computed at the fast precision (bf16); nothing for exact fp32."""
    if not precision.startswith("fast"):
        return None
    return badge("fast · bf16", "warn", id=badge_id, title=f"computed at precision {precision}")


def render_grid(acts: dict[str, Any] | None, sort: str) -> tuple[Any, Any, Any]:
    if not acts:
        return None, None, None
    timing = html.Span(
        [
            f"activations API call: {acts.get('api_ms', 0):.0f} ms ",
            precision_badge(acts.get("precision", "exact"), "grid-precision"),
        ],
        id="grid-api-ms",
        **{"data-api-ms": str(acts.get("api_ms", 0))},
    )
    return filter_grid(acts, sort_order(acts["channels"], sort)), grid_summary(acts), timing


# --- the selected filter and its detail view -----------------------------------------------------------


def select_filter(
    trigger: Any,
    clicked: int | None,
    acts: dict[str, Any] | None,
    current: dict[str, Any] | None,
    sort: str,
    prev_clicks: int = 0,
    next_clicks: int = 0,
) -> Any:
    """The new selection ``{"layer", "index", "prev", "next"}`` (None closes the detail view) after ``trigger``
    (``clicked`` is the tile index when a tile was clicked).

    ``prev``/``next`` remember the buttons' click counts already applied, so the step is the difference:
    quick repeated arrow presses that reach the server with a stale selection still land on the right
    filter.
    """
    if trigger == "activations-data":
        # new activations: keep the selection if it is a filter of this layer (a link, or a new image)
        if not current or current.get("index") is None:
            return no_update
        if acts and current.get("layer") == acts["layer"] and 0 <= current["index"] < len(acts["channels"]):
            return no_update
        return None
    if not acts:
        return no_update
    seen = {"prev": prev_clicks or 0, "next": next_clicks or 0}
    if trigger == "filter-close":
        return None
    if trigger in ("filter-prev", "filter-next"):
        if not current or current.get("index") is None or current.get("layer") != acts["layer"]:
            return no_update
        step = (seen["next"] - current.get("next", 0)) - (seen["prev"] - current.get("prev", 0))
        index = (
            neighbour(sort_order(acts["channels"], sort), current["index"], step)
            if step
            else current["index"]
        )
        return {"layer": acts["layer"], "index": index, **seen}
    if trigger == "tile-click" and clicked is not None and 0 <= clicked < len(acts["channels"]):
        return {"layer": acts["layer"], "index": int(clicked), **seen}
    return no_update


def weights_view(model: str, untrained: bool, layers: list[dict[str, Any]], layer: str, index: int) -> Any:
    """The filter's weights as a figure, or a note saying why there are none."""
    source = weights_source_layer(layers, layer)
    if source is None:
        return notice(
            f"{layer} has no conv or linear layer behind its channels, so there are no weights to show."
        )
    try:
        payload = get_client().filter_weights(model, source, index, untrained)
    except ApiError as err:
        return error_alert(str(err), "Cannot load weights")
    children: list[Any] = []
    if source != layer:
        children.append(
            html.Div(f"Weights of {source}, the layer that produces these channels.", className="cl-caption")
        )
    children.append(
        dcc.Graph(figure=filter_weights_figure(payload), config=GRAPH_CONFIG, id="detail-weights-graph")
    )
    return html.Div(children)


def show_detail(
    selection: dict[str, Any] | None,
    acts: dict[str, Any] | None,
    model: str | None,
    untrained: bool,
    layers_data: dict[str, Any] | None,
) -> tuple[Any, ...]:
    """(hidden, title, input src, map src, stats, weights) of the detail view."""
    index = (selection or {}).get("index")
    if (
        not acts
        or not model
        or index is None
        or selection.get("layer") != acts["layer"]
        or not 0 <= index < len(acts["channels"])
    ):
        return True, no_update, no_update, no_update, no_update, no_update
    silent = " · silent" if index in set(acts.get("silent_channels", [])) else ""
    title = html.Span(
        [
            f"{acts['layer']} · filter ",
            html.Span(str(index), id="detail-index"),
            silent,
            neuron_link(model, acts["layer"], index, "detail-neuron-link"),
        ]
    )
    layers = (layers_data or {}).get("layers", [])
    return (
        False,
        title,
        browser_url(acts["input_url"]) if acts.get("input_url") else None,  # a generator's input is a latent
        browser_url(acts["channel_url_template"].replace("{index}", str(index))),
        filter_stats(acts, index),
        weights_view(model, untrained, layers, acts["layer"], index),
    )


# --- the URL holds the state ---------------------------------------------------------------------------


def explore_query(
    model: str | None,
    untrained: bool,
    image_id: str | None,
    layer: str | None,
    selection: dict[str, Any] | None,
) -> Any:
    """The query string of the view (``no_update`` until a model is shown)."""
    if not model:
        return no_update
    index = (selection or {}).get("index") if (selection or {}).get("layer") == layer else None
    return ExploreState(model=model, image=image_id, layer=layer, filter=index, untrained=untrained).query()
