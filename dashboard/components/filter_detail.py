"""The filter detail view: the map enlarged over the input, its statistics and its weights."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import dcc, html

from dashboard.components.attributions import filter_insights


def neighbour(order: Sequence[int], index: int, step: int) -> int:
    """The filter ``step`` places from ``index`` in the grid's display order, wrapping around."""
    if not order:
        return index
    try:
        pos = list(order).index(index)
    except ValueError:
        return order[0]
    return order[(pos + step) % len(order)]


def rank_of(channels: Sequence[dict[str, Any]], index: int, key: str) -> int:
    """1-based rank of a channel by ``key`` (largest first)."""
    ordered = sorted(channels, key=lambda c: (-float(c[key]), c["index"]))
    return 1 + next(i for i, c in enumerate(ordered) if c["index"] == index)


def filter_stats(activations: dict[str, Any], index: int) -> html.Dl:
    channels = activations["channels"]
    ch = next(c for c in channels if c["index"] == index)
    silent = index in set(activations.get("silent_channels", []))
    rows = [
        ("Filter", f"{index} of {len(channels)}"),
        ("Mean", f"{ch['mean']:.4g}  (rank {rank_of(channels, index, 'mean')})"),
        ("Max", f"{ch['max']:.4g}  (rank {rank_of(channels, index, 'max')})"),
        ("Min", f"{ch['min']:.4g}"),
        ("Active", f"{ch['fraction_active']:.1%} of positions > 0"),
        ("Silent", "yes: never above 0 on this image" if silent else "no"),
    ]
    return html.Dl([item for k, v in rows for item in (html.Dt(k), html.Dd(v))], className="cl-stats-dl")


def detail_panel() -> html.Div:
    """The (initially hidden) dialog; callbacks fill its parts. Arrow keys press prev/next (static/explore.js)."""
    return html.Div(
        html.Div(
            [
                html.Div(
                    [
                        html.H3(id="detail-title", className="cl-detail-title"),
                        html.Div(
                            [
                                html.Button("← prev", id="filter-prev", n_clicks=0, className="cl-btn"),
                                html.Button("next →", id="filter-next", n_clicks=0, className="cl-btn"),
                                html.Button("✕ close", id="filter-close", n_clicks=0, className="cl-btn"),
                            ],
                            className="cl-detail-buttons",
                        ),
                    ],
                    className="cl-detail-header",
                ),
                html.Div(
                    [
                        html.Div(
                            [
                                html.Div(
                                    [
                                        html.Img(
                                            id="detail-input", className="cl-overlay-input", alt="input image"
                                        ),
                                        html.Img(
                                            id="detail-map", className="cl-overlay-map", alt="activation map"
                                        ),
                                    ],
                                    className="cl-overlay",
                                ),
                                html.Label("Map opacity", htmlFor="detail-opacity", className="cl-label"),
                                dcc.Slider(
                                    id="detail-opacity",
                                    min=0,
                                    max=1,
                                    step=0.05,
                                    value=0.65,
                                    marks={0: "input", 0.5: "50%", 1: "map"},
                                ),
                            ],
                            className="cl-detail-left",
                        ),
                        html.Div(
                            [
                                html.Div(id="detail-stats"),
                                dcc.Loading(html.Div(id="detail-weights"), type="dot", delay_show=150),
                            ],
                            className="cl-detail-right",
                        ),
                    ],
                    className="cl-detail-body",
                ),
                filter_insights(),  # issue 4: maps side by side and DeepVis
                html.Div("← → step through filters in grid order · Esc closes", className="cl-hint"),
            ],
            className="cl-detail-dialog",
            role="dialog",
            **{"aria-modal": "true", "aria-labelledby": "detail-title"},
        ),
        id="filter-detail",
        className="cl-detail-backdrop",
        hidden=True,
    )
