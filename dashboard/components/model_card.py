"""The model card: what the network is, what it expects, and whether its weights are trained."""

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
    return html.Div(children, className="cl-model-card", id="model-card-body")


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
