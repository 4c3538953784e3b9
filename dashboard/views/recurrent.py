"""What the recurrent page shows, as plain functions of its inputs (the callbacks only wire them).

A digit of the built-in ``digits`` dataset is read pixel by pixel by ``seq_rnn``, ``seq_lstm`` or ``seq_gru``;
the page shows its states over time (``/sequence``), the models' gradient flow, the gate statistics over
the dataset and the hidden states of a few digits projected on their first two principal components.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from dash import dcc, html

from dashboard.api_client import ApiError, get_client
from dashboard.components.common import badge, error_alert, notice
from dashboard.figures import message_figure
from dashboard.figures import recurrent as figures
from dashboard.images import png_data_url
from dashboard.views.common import pick

DATASET = "digits"
PREFERRED = "seq_lstm"
PROJECTED_DIGITS = 10  # the dataset's first ten digits (one of each class) and the chosen one are projected
COLOR_BY = (("time step", "time"), ("class", "class"))


# --- models -----------------------------------------------------------------------------------------------


def _summary(card: dict[str, Any]) -> dict[str, Any]:
    rec = card.get("recurrent") or {}
    return {
        "id": card["id"],
        "cell": rec.get("cell", "?"),
        "gates": list(rec.get("gates") or []),
        "accuracy": (card.get("metrics") or {}).get("held_out_accuracy"),
        "labels": list(card.get("labels") or []),
    }


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def accuracy_table(cards: dict[str, dict[str, Any]]) -> html.Div:
    """Each model's held-out accuracy, and how far the LSTM is ahead of the plain RNN."""
    rows = [
        html.Tr([html.Td(c["id"]), html.Td(c["cell"].upper()), html.Td(_percent(c["accuracy"]))])
        for c in cards.values()
    ]
    table = html.Table(
        [
            html.Thead(html.Tr([html.Th("model"), html.Th("cell"), html.Th("held-out accuracy")])),
            html.Tbody(rows),
        ],
        className="cl-rec-accuracy",
        id="rec-accuracy-table",
    )
    by_cell = {c["cell"]: c for c in cards.values() if c["accuracy"] is not None}
    gap = None
    if "rnn" in by_cell and "lstm" in by_cell:
        points = 100 * (by_cell["lstm"]["accuracy"] - by_cell["rnn"]["accuracy"])
        gap = html.P(
            f"The LSTM gets {points:+.1f} points over the plain RNN on the same pixel-by-pixel digits: "
            "its gated cell state keeps what the early pixels said.",
            id="rec-gap",
        )
    return html.Div([table, gap])


def load_models(wanted: str | None) -> tuple[list[dict[str, Any]], Any, dict[str, Any], Any, Any]:
    """(options, value, cards by id, accuracy table, error): the API's recurrent models."""
    api = get_client()
    try:
        ids = [m["id"] for m in api.models() if m.get("kind") == "recurrent"]
        cards = {i: _summary(api.model_card(i)) for i in ids}
    except ApiError as exc:
        return [], None, {}, None, error_alert(str(exc), "Could not list the recurrent models")
    if not cards:
        return [], None, {}, None, notice("The API lists no recurrent model (seq_rnn, seq_lstm, seq_gru).")
    options = [
        {"label": f"{c['id']} ({c['cell'].upper()}, {_percent(c['accuracy'])})", "value": c["id"]}
        for c in cards.values()
    ]
    error = None
    if wanted and wanted not in cards:
        error = notice(f"'{wanted}' is not a recurrent model; showing {pick(None, list(cards), PREFERRED)}.")
    return options, pick(wanted, list(cards), PREFERRED), cards, accuracy_table(cards), error


def links(model: str | None) -> Any:
    """Where else the model can be looked at: Explore, its final hidden states projected, the audit."""
    if not model:
        return None
    return html.P(
        [
            "Open ",
            html.Strong(model),
            " in ",
            dcc.Link("Explore", href=f"/?model={model}", id="rec-link-explore"),
            " · ",
            dcc.Link(
                "Projections of its final hidden state",
                href=f"/projections?dataset={DATASET}&model={model}&layer=final",
                id="rec-link-projections",
            ),
            " · ",
            dcc.Link("Audit its units", href=f"/audit?model={model}&dataset={DATASET}", id="rec-link-audit"),
        ],
        className="cl-rec-links",
    )


# --- one digit --------------------------------------------------------------------------------------------


def digit_index(value: Any) -> int:
    """The digit box's value as an index; a ``ValueError`` with the message to show otherwise."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = float("nan")
    if not np.isfinite(number) or not number.is_integer():
        raise ValueError(
            f"Type the index of a digit of the '{DATASET}' dataset: a whole number such as 0 or 42."
        )
    return int(number)


def _states(api: Any, trace: dict[str, Any]) -> dict[str, np.ndarray]:
    return {name: api.artifact_array(a["npy_url"]) for name, a in trace["arrays"].items()}


def _no_digit(message: Any) -> tuple[Any, ...]:
    empty = message_figure("no digit", height=200)
    return None, empty, empty, None, message


def sequence(
    model: str | None, value: Any, labels: list[str] | None = None
) -> tuple[Any, Any, Any, Any, Any]:
    """(digit image, states figure, prediction figure, caption, error) for one digit read by ``model``;
    ``labels``: the model's class names (its card's)."""
    if not model:
        return _no_digit(None)
    try:
        index = digit_index(value)
    except ValueError as exc:
        return _no_digit(error_alert(str(exc), "Not a digit index"))
    api = get_client()
    try:
        trace = api.sequence(model, dataset=DATASET, index=index)
        arrays = _states(api, trace)
        thumb = api.dataset_thumbnail(DATASET, index)
    except ApiError as exc:
        return _no_digit(error_alert(str(exc), f"Could not read digit {index}"))
    steps = trace["per_step"]
    n_classes = len(steps["probabilities"][0])
    class_names = list(labels or []) if len(labels or []) == n_classes else [str(i) for i in range(n_classes)]
    pred = trace["prediction"]
    title = f"{model} reading digit #{index} pixel by pixel: units x time"
    states = figures.states_figure(arrays, trace["inputs"], trace["reading_order"], title=title)
    prediction = figures.prediction_figure(
        steps["probabilities"],
        class_names,
        steps["predicted"],
        true_label=trace["label"],
        settled_at=pred["settled_at_step"],
    )
    right = pred["label"] == trace["label"]
    caption = html.Div(
        [
            html.Span(f"digit #{index}, true class {trace['label']}; "),
            html.Span(f"{model} says {pred['label']} (P = {pred['probability']:.2f})", id="rec-predicted"),
            badge("right" if right else "wrong", "good" if right else "danger"),
            html.Div(
                f"The answer settles at step {pred['settled_at_step']} of {trace['steps']}: "
                "from there on the top class stays the final one.",
                className="cl-caption",
            ),
        ]
    )
    image = html.Img(
        src=png_data_url(thumb), className="cl-rec-digit", id="rec-digit-img", alt=f"digit {index}"
    )
    return image, states, prediction, caption, None


# --- the dataset: gates, gradient flow, projection ---------------------------------------------------------


def gates(model: str | None, cards: dict[str, Any] | None) -> tuple[Any, Any, Any]:
    """(saturation scatter, gate histogram, note or error) of ``model``'s gates over the whole dataset."""
    card = (cards or {}).get(model or "")
    if not model or card is None:
        return message_figure("pick a model", height=360), message_figure("pick a model", height=360), None
    if not card["gates"]:
        gated = [c["id"] for c in (cards or {}).values() if c["gates"]]
        text = f"{model} is a plain {card['cell'].upper()}: it has no gates. Pick {' or '.join(gated) or 'an LSTM'}."
        return message_figure("no gates", height=360), message_figure("no gates", height=360), notice(text)
    try:
        stats = get_client().gate_stats(model, DATASET)
    except ApiError as exc:
        failed = message_figure("could not compute the gate statistics", height=360)
        return failed, failed, error_alert(str(exc), "Could not compute the gate statistics")
    hist = stats.get("histogram")
    histogram = (
        figures.gate_histogram_figure(hist, model) if hist else message_figure("no forget gate", height=360)
    )
    note = html.P(f"Over {stats['images']} digits ({stats['steps_counted']:,} steps).", id="rec-gates-note")
    if hist:
        between = hist["share_between"]
        answer = "No" if between >= 0.25 else "Mostly"
        note.children += (
            f" Does the {hist['gate']} gate only use 1 or 0? {answer}: {between:.1%} of its values lie between "
            f"0.1 and 0.9 ({hist['share_below_0_1']:.1%} below, {hist['share_above_0_9']:.1%} above)."
        )
    return figures.saturation_figure(stats), histogram, note


TRAINED = "final"
TRAINED_OPTION = {"label": "trained models", "value": TRAINED}  # the picker's first option, and its default


def flow_snapshots(cards: dict[str, Any] | None) -> list[dict[str, str]]:
    """The gradient-flow picker's options: the trained models, then the training snapshots (epoch_XX) that
    every recurrent model has, earliest first. Early in training is where a plain RNN's gradient vanishes."""
    if not cards:
        return []
    client, shared = get_client(), None
    try:
        for model in cards:
            names = {n for n in client.checkpoints(model) if n.startswith("epoch_")}
            shared = names if shared is None else shared & names
    except ApiError:
        shared = set()  # the picker then offers the trained models only; the plot reports its own errors
    epochs = sorted(shared or ())
    return [TRAINED_OPTION] + [
        {"label": f"after epoch {int(n.removeprefix('epoch_'))}", "value": n} for n in epochs
    ]


def gradient_flow(cards: dict[str, Any] | None, snapshot: str | None = TRAINED) -> tuple[Any, Any]:
    """(figure, error): the vanishing-gradient curves of every recurrent model at ``snapshot`` (a training
    snapshot's name, or ``TRAINED``), on one log scale."""
    if not cards:
        return message_figure("no recurrent models", height=320), None
    try:
        flow = get_client().gradient_flow(
            list(cards), DATASET, snapshot=None if snapshot in (None, TRAINED) else snapshot
        )
    except ApiError as exc:
        return message_figure("could not compute the gradient flow", height=320), error_alert(
            str(exc), "Could not compute the gradient flow"
        )
    return figures.gradient_flow_figure(flow), None


def exploding(clip: Any) -> tuple[Any, Any]:
    """(figure, error): the RNN initialised to explode, without clipping and with each step clipped to ``clip``."""
    try:
        norm = float(clip)
    except (TypeError, ValueError):
        norm = float("nan")
    if not np.isfinite(norm) or norm <= 0:
        return message_figure("no clip norm", height=320), error_alert(
            "The clip norm must be a positive number, such as 1.", "Not a clip norm"
        )
    try:
        out = get_client().gradient_flow_exploding(DATASET, clip=norm)
    except ApiError as exc:
        return message_figure("could not compute the exploding RNN", height=320), error_alert(
            str(exc), "Could not compute the exploding RNN"
        )
    return figures.exploding_figure(out), None


def principal_components(x: np.ndarray, k: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """``x`` (N, D) on its first ``k`` principal components, and the share of variance each explains."""
    centred = x - x.mean(axis=0, keepdims=True)
    _, s, vt = np.linalg.svd(centred, full_matrices=False)
    total = float((s**2).sum()) or 1.0
    return centred @ vt[:k].T, (s[:k] ** 2) / total


def projection(model: str | None, value: Any, color_by: str | None) -> tuple[Any, Any]:
    """(figure, error): the hidden states of the first digits and of the chosen one, each step a point."""
    if not model:
        return message_figure("pick a model", height=420), None
    try:
        chosen = digit_index(value)
    except ValueError:
        chosen = None  # the digit panel says why; the projection still shows the first digits
    indices = list(range(PROJECTED_DIGITS))
    if chosen is not None and chosen not in indices:
        indices.append(chosen)
    api = get_client()
    states, labels, kept = [], [], []
    try:
        for i in indices:
            try:
                trace = api.sequence(model, dataset=DATASET, index=i)
            except ApiError as exc:
                if i == chosen and exc.status == 422:
                    continue  # an index out of range: the digit panel shows the API's message
                raise
            states.append(api.artifact_array(trace["arrays"]["hidden"]["npy_url"]).T)  # time x units
            labels.append(trace["label"])
            kept.append(i)
    except ApiError as exc:
        return message_figure("could not project the hidden states", height=420), error_alert(
            str(exc), "Could not project the hidden states"
        )
    steps = states[0].shape[0]
    coords, share = principal_components(np.concatenate(states))
    tracks = [
        {"index": i, "label": lab, "xy": coords[k * steps : (k + 1) * steps]}
        for k, (i, lab) in enumerate(zip(kept, labels, strict=True))
    ]
    title = (
        f"Hidden states of {len(kept)} digits over {steps} steps, {model}: PCA "
        f"(PC 1 {share[0]:.0%}, PC 2 {share[1]:.0%} of the variance)"
    )
    return figures.hidden_projection_figure(
        tracks, color_by="class" if color_by == "class" else "time", selected=chosen, title=title
    ), None
