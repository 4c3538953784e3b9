"""Pure figures of the compare page: the CKA map between the layers of two models, best matches marked."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

from dashboard.figures.audit import cka_heatmap


def cross_cka_figure(result: dict[str, Any]) -> go.Figure:
    """``result`` is a finished ``compare_cka`` job's: rows are A's layers, columns B's; a ring marks, in
    each row, the layer of B most like that layer of A."""
    # "efficientnet_lite0:weights" names a model's own weights: the model's id says it
    a, b = (result[side]["label"].removesuffix(":weights") for side in ("a", "b"))
    rows, cols = result["layers_a"], result["layers_b"]
    fig = cka_heatmap(
        result["cka"],
        rows,
        cols,
        f"Linear CKA over {result['num_images']} images of {result['dataset']}",
        height=max(360, 120 + 28 * len(rows)),
    )
    matches = result.get("best_match") or []
    fig.add_trace(
        go.Scatter(
            x=[m["layer_b"] for m in matches],
            y=[m["layer_a"] for m in matches],
            mode="markers",
            marker={"symbol": "circle-open", "size": 14, "color": "#ff4d4d", "line": {"width": 2}},
            name="best match",
            hovertemplate="%{y} is most like %{x}<extra></extra>",
        )
    )
    fig.update_layout(showlegend=False)
    fig.update_xaxes(title={"text": f"B: {b}", "font": {"size": 11}}, tickangle=-45)
    fig.update_yaxes(title={"text": f"A: {a}", "font": {"size": 11}})
    return fig
