"""The model card: what the network is, what it expects, and whether its weights are trained; with
CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true on the API, a button that pulls missing official weights and the pull's
progress."""

from __future__ import annotations

from typing import Any

from dash import html

from dashboard.components.common import badge


def weights_badge(card: dict[str, Any]) -> html.Span:
    if card.get("untrained"):
        return badge("UNTRAINED · random weights", "danger", id="model-weights-badge")
    if card.get("pretrained"):
        return badge(
            f"trained · {card.get('pretrained_on') or 'pretrained'}", "good", id="model-weights-badge"
        )
    return badge("weights unavailable", "warn", id="model-weights-badge")


def model_card(card: dict[str, Any]) -> html.Div:
    """``card`` is the API's ``GET /models/{id}`` answer."""
    c, h, w = (card.get("input_size") or [0, 0, 0])[:3]
    rows = [
        ("Architecture", card.get("architecture", "")),
        ("Source", _source(card)),
        ("Class", (card.get("origin") or {}).get("class", "")),
        ("Checkpoint", _checkpoint(card)),
        ("Input", f"{c}×{h}×{w}, mean {_short(card.get('mean'))}, std {_short(card.get('std'))}"),
        ("Classes", f"{card.get('num_classes', '?')}"),
        ("Weights", card.get("weights_source") or card.get("weights_status", "")),
    ]
    children: list[Any] = [
        html.Div([html.Span(card.get("id", ""), className="cl-card-title"), weights_badge(card)]),
        html.P(card.get("description", ""), className="cl-card-desc"),
        html.Dl([item for k, v in rows for item in (html.Dt(k), html.Dd(v))], className="cl-card-dl"),
    ]
    if card.get("untrained"):
        children.append(
            html.P(
                "Built with random weights on request: activations show the architecture, not learned features.",
                className="cl-card-warn",
            )
        )
    elif not card.get("pretrained") and card.get("weights_message"):
        children.append(html.P(card["weights_message"], className="cl-card-warn"))
    if card.get("weights_pull") and not card.get("untrained"):
        children.append(weights_pull_button())
    return html.Div(children, className="cl-model-card", id="model-card-body")


def weights_pull_button() -> html.Button:
    """Shown only when the card says ``weights_pull``: the API would download the official weights."""
    return html.Button(
        "Download the official weights (SHA-256 checked)",
        id="weights-pull-button",
        n_clicks=0,
        className="cl-btn",
        title="POST /api/v1/models/{id}/weights/pull, as `convlens weights pull` does",
    )


def weights_pull_progress(job: dict[str, Any]) -> html.Div:
    """A pull job (the API's job JSON) as one progress bar per file: bytes received of the announced total."""
    files = (job.get("frame") or {}).get("files") or []
    rows: list[Any] = []
    for f in files:
        received, total = int(f.get("received") or 0), f.get("total")
        of = f" of {_megabytes(int(total))}" if total else ""
        rows.append(
            html.Div(
                [
                    html.Span(f"{f.get('name', '')}: {_megabytes(received)}{of}", className="cl-pull-file"),
                    html.Progress(value=str(received), max=str(total or max(received, 1))),
                ],
                className="cl-pull-row",
            )
        )
    message = job.get("message") or f"Download {job.get('status', '')}"
    return html.Div(
        rows or [html.Span(message, className="cl-pull-message")],
        className="cl-pull-progress",
        id="weights-pull-progress",
    )


def _megabytes(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def _short(values: Any) -> str:
    if not values:
        return "?"
    return "(" + ", ".join(f"{float(v):.3g}" for v in values) + ")"


def _source(card: dict[str, Any]) -> str:
    group = (card.get("origin") or {}).get("group", "")
    label = {"lab": "lab model (catalogue)", "built-in": "built-in"}.get(group, group)
    return f"{card.get('source', '')} · {label}" if label else card.get("source", "")


def _checkpoint(card: dict[str, Any]) -> str:
    origin = card.get("origin") or {}
    name, fmt = origin.get("checkpoint", ""), origin.get("format", "")
    if name and fmt:
        return f"{name} ({fmt})"
    return name or fmt or "none"
