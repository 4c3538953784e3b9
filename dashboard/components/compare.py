"""Component trees of the compare page: one side's predictions and filter grid, the filters that changed most
between two checkpoints (weights and maps before and after), and the best layer matches of a CKA map."""

from __future__ import annotations

from typing import Any

import numpy as np
from dash import dcc, html

from dashboard.api_client import browser_url
from dashboard.components.common import GRAPH_CONFIG, badge, notice
from dashboard.components.filter_grid import filter_grid, grid_summary, sort_order
from dashboard.figures.predictions import predictions_figure
from dashboard.figures.weights import filter_weights_figure

CHECKPOINT_WEIGHTS = ":weights"  # the checkpoint picker's value for the zoo's own weights (never a file name)


def checkpoint_options(checkpoints: list[str]) -> list[dict[str, str]]:
    """The checkpoint picker: the zoo weights first, then the files stored for the model."""
    return [{"label": "zoo weights", "value": CHECKPOINT_WEIGHTS}] + [
        {"label": c, "value": c} for c in checkpoints
    ]


def side_panel(side: dict[str, Any], which: str) -> html.Div:
    """One side of the API's ``POST /compare`` answer: its label, the top predictions and the layer's grid."""
    act = side["activations"]
    top = side["predictions"][0] if side["predictions"] else None
    head = [
        html.H3(side["label"], className="cl-compare-label", id=f"compare-label-{which}"),
        badge(
            "untrained" if side["untrained"] else side["weights"], "warn" if side["untrained"] else "neutral"
        ),
    ]
    if top is not None:
        head.append(
            html.Span(
                f"top-1: {top['label']} ({top['probability']:.1%})",
                className="cl-compare-top1",
                id=f"compare-top1-{which}",
            )
        )
    return html.Div(
        [
            html.Div(head, className="cl-compare-head"),
            dcc.Graph(
                id=f"compare-pred-{which}",
                figure=predictions_figure(side["predictions"], untrained=side["untrained"]),
                config=GRAPH_CONFIG,
            ),
            html.P(grid_summary(act), className="cl-caption"),
            filter_grid(act, sort_order(act["channels"]), grid_id=f"compare-grid-{which}"),
        ],
        className="cl-compare-side",
    )


def _weights_graph(filt: dict[str, Any], side: dict[str, Any], when: str) -> dcc.Graph:
    """One side's weights of a changed filter, on the colour scale both sides share."""
    bound = max(
        float(np.abs(np.asarray(filt[s]["values"], dtype=np.float64)).max()) for s in ("before", "after")
    )
    payload = {
        "layer": f"{when}: {filt['layer']}",
        "index": filt["index"],
        "values": side["values"],
        "rgb": side["rgb"],
    }
    return dcc.Graph(
        figure=filter_weights_figure(payload, bound or None),
        config=GRAPH_CONFIG,
        className="cl-changed-weights",
    )


def _map(side: dict[str, Any], when: str) -> html.Figure:
    return html.Figure(
        [
            html.Img(src=browser_url(side["map_url"]), alt=f"map {when}", className="cl-changed-map"),
            html.Figcaption(f"{when}: mean {side['mean']:.3g}, max {side['max']:.3g}"),
        ]
    )


def changed_filters(changed: dict[str, Any] | None, labels: tuple[str, str]) -> Any:
    """The filters that moved most, each with its weights and its map on the image before and after."""
    if not changed:
        return notice(
            "Two models have different weights everywhere: pick two checkpoints of one model to see which filters changed."
        )
    cards = []
    for f in changed["filters"]:
        cards.append(
            html.Li(
                [
                    html.Div(
                        [
                            html.Strong(f"{f['layer']} · filter {f['index']}"),
                            html.Span(f" moved {f['change']:.1%} of its norm", className="cl-caption"),
                        ]
                    ),
                    html.Div(
                        [
                            _weights_graph(f, f["before"], labels[0]),
                            _weights_graph(f, f["after"], labels[1]),
                            _map(f["before"], labels[0]),
                            _map(f["after"], labels[1]),
                        ],
                        className="cl-changed-row",
                    ),
                ],
                className="cl-changed-filter",
            )
        )
    per_epoch = f", {changed['epochs']:g} epochs apart" if changed.get("epochs") else ""
    summary = (
        f"Ranked in {', '.join(changed['scope'])}: the whole network's weights moved "
        f"{changed['relative_update']:.1%}{per_epoch}."
    )
    return html.Div([html.P(summary, className="cl-caption"), html.Ol(cards, id="compare-changed-list")])


def best_matches(result: dict[str, Any]) -> html.Ol:
    """For each layer of A, the layer of B most like it and their CKA."""
    return html.Ol(
        [
            html.Li(f"{m['layer_a']} ↔ {m['layer_b']} (CKA {m['cka']:.3f})")
            for m in result.get("best_match") or []
        ],
        id="compare-cka-matches",
        className="cl-compare-matches",
    )
