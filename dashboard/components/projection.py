"""Pieces of the projections page: parameter controls, the hover card, status and purity panels."""

from __future__ import annotations

import math
from typing import Any

from dash import dcc, html

from dashboard.components.common import badge

LIVE_PARAMS = ("perplexity", "learning_rate")  # the two sliders; every other parameter is a plain control
EPSILON_MIN, EPSILON_MAX = 1.0, 3.5  # the epsilon slider is log10(learning rate): 10 .. ~3,000


def epsilon_from_slider(value: float | None) -> float | None:
    return None if value is None else round(10.0 ** float(value), 1)


def slider_from_epsilon(learning_rate: float) -> float:
    return round(math.log10(learning_rate), 3)


def param_controls(method: str, specs: list[dict[str, Any]]) -> list[html.Div]:
    """One labelled control per parameter (pattern-matching ids ``{"type": "proj-param", "name": ...}``)."""
    out = []
    for spec in specs:
        if method == "tsne" and spec["name"] in LIVE_PARAMS:
            continue
        pid = {"type": "proj-param", "name": spec["name"]}
        if spec["kind"] == "choice":
            control: Any = dcc.Dropdown(
                id=pid,
                options=[{"label": c, "value": c} for c in spec["choices"]],
                value=spec["default"],
                clearable=False,
            )
        else:
            control = dcc.Input(
                id=pid,
                type="number",
                value=spec["default"],
                min=spec.get("minimum"),
                max=spec.get("maximum"),
                step=1 if spec["kind"] == "int" else "any",
                placeholder="auto" if spec["default"] is None else None,
                debounce=True,
                className="cl-input",
            )
        out.append(
            html.Div(
                [
                    html.Label(
                        spec["name"].replace("_", " "), className="cl-label", title=spec.get("help", "")
                    ),
                    control,
                ],
                className="cl-param",
            )
        )
    return out


def collect_params(ids: list[dict[str, Any]], values: list[Any]) -> dict[str, Any]:
    """{name: value} from the pattern-matching controls, empty values left out (the server's defaults)."""
    return {i["name"]: v for i, v in zip(ids, values, strict=False) if v not in (None, "")}


def hover_card(thumbnail_src: str, index: int, label: str, predicted: str | None) -> html.Div:
    parts: list[Any] = [html.Div([html.Span("label ", className="cl-label"), html.Strong(label)])]
    if predicted is not None:
        parts.append(html.Div([html.Span("predicted ", className="cl-label"), html.Span(predicted)]))
    parts.append(html.Div(f"image #{index} · click to open it in Explore", className="cl-caption"))
    return html.Div(
        [
            html.Img(
                src=thumbnail_src, id="proj-hover-thumb", className="cl-proj-thumb", alt=f"image {index}"
            ),
            html.Div(parts),
        ],
        className="cl-proj-hover",
    )


def status_line(job: dict[str, Any]) -> html.Div:
    """Iteration, KL, epsilon and perplexity of the latest frame, or the job's state."""
    status = job.get("status", "")
    tone = {"succeeded": "good", "failed": "danger", "cancelled": "warn"}.get(status, "neutral")
    frame = job.get("frame") or {}
    bits = []
    if frame.get("iteration"):
        bits.append(f"iteration {frame['iteration']}/{frame.get('total_iter', '?')}")
    if frame.get("kl_divergence") is not None:
        bits.append(f"KL {frame['kl_divergence']:.3f}")
    if frame.get("learning_rate") is not None:
        bits.append(f"ε {frame['learning_rate']:.4g}")
    if frame.get("perplexity") is not None:
        bits.append(f"perplexity {frame['perplexity']:.4g}")
    if not bits and job.get("message"):
        bits.append(str(job["message"]))
    return html.Div(
        [
            badge(status or "idle", tone, id="proj-status-badge"),
            html.Span(" · ".join(bits), className="cl-caption"),
        ]
    )


def purity_panel(result: dict[str, Any]) -> html.Div:
    """Per-class k-NN purity in the embedding and in feature space, confused pairs, trustworthiness, metrics."""
    purity = result.get("purity") or {}
    emb, feat = purity.get("embedding", {}), purity.get("features", {})
    k = purity.get("k", "")
    rows = [
        html.Tr(
            [
                html.Td(c),
                html.Td(f"{emb['per_class'].get(c, float('nan')):.3f}"),
                html.Td(f"{feat['per_class'].get(c, float('nan')):.3f}"),
            ]
        )
        for c in emb.get("per_class", {})
    ]
    table = html.Table(
        [
            html.Thead(html.Tr([html.Th("class"), html.Th(f"{k}-NN purity (2-D)"), html.Th("(features)")])),
            html.Tbody(
                [
                    *rows,
                    html.Tr(
                        [
                            html.Th("all"),
                            html.Th(f"{emb.get('overall', 0):.3f}"),
                            html.Th(f"{feat.get('overall', 0):.3f}"),
                        ]
                    ),
                ]
            ),
        ],
        className="cl-table",
        id="proj-purity-table",
    )
    pairs = purity.get("confused_pairs") or []
    pair_items = [html.Li(f"{p['a']} ↔ {p['b']}: {p['share'] * 100:.1f}% of neighbour slots") for p in pairs]
    metrics = {k2: v for k2, v in (result.get("metrics") or {}).items() if v is not None and k2 != "seconds"}
    metric_rows = [
        html.Div([html.Span(f"{name.replace('_', ' ')} ", className="cl-label"), html.Span(f"{v:.4g}")])
        for name, v in metrics.items()
    ]
    trust = purity.get("trustworthiness", float("nan"))
    return html.Div(
        [
            html.Div(
                [
                    html.Span("trustworthiness ", className="cl-label"),
                    html.Strong(f"{trust:.3f}", id="proj-trust"),
                ]
            ),
            *metric_rows,
            table,
            html.Div("Most-confused classes (feature space)", className="cl-gallery-label"),
            html.Ul(
                pair_items or [html.Li("none: no class has another class among its neighbours")],
                className="cl-pairs",
            ),
        ]
    )
