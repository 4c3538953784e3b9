"""The top-k predictions as a horizontal bar chart, best class on top."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

ACCENT = "#3b6fd8"
MUTED = "#9db5e8"


def predictions_figure(predictions: Sequence[dict[str, Any]], *, untrained: bool = False) -> go.Figure:
    """``predictions`` as the API returns them (``label``, ``probability``, ``index``), best first."""
    ordered = list(predictions)[::-1]  # plotly draws the first bar at the bottom
    labels = [str(p["label"]) for p in ordered]
    probs = [float(p["probability"]) for p in ordered]
    colors = [ACCENT if i == len(ordered) - 1 else MUTED for i in range(len(ordered))]
    fig = go.Figure(
        go.Bar(
            x=probs,
            y=labels,
            orientation="h",
            marker_color=colors,
            text=[f"{p:.1%}" for p in probs],
            textposition="auto",
            customdata=[p["index"] for p in ordered],
            hovertemplate="%{y} (class %{customdata})<br>p = %{x:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        margin={"l": 8, "r": 8, "t": 28 if untrained else 8, "b": 8},
        height=40 + 30 * max(1, len(ordered)),
        xaxis={"range": [0, 1], "tickformat": ".0%", "fixedrange": True},
        yaxis={"automargin": True, "fixedrange": True},
        plot_bgcolor="white",
        paper_bgcolor="white",
        showlegend=False,
    )
    if untrained:
        fig.update_layout(
            title={
                "text": "Untrained weights: these scores are meaningless",
                "font": {"size": 12, "color": "#b3261e"},
            }
        )
    return fig
