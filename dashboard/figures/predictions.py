"""The top-k predictions as a horizontal bar chart, best class on top."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from dash import Patch

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


def figure_parts(fig: go.Figure) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """``fig``'s traces and its layout without the template (the browser already has one): what a graph
    needs to turn whatever it shows into ``fig``. Annotations and the title are cleared when ``fig`` has
    none, so that nothing of the previous figure stays."""
    layout = {k: v for k, v in fig.layout.to_plotly_json().items() if k != "template"}
    for key, empty in (("annotations", []), ("title", {"text": ""})):
        layout.setdefault(key, empty)
    return [trace.to_plotly_json() for trace in fig.data], layout


def figure_patch(fig: go.Figure) -> Patch:
    """A ``Patch`` that turns whatever figure a graph shows into ``fig`` (:func:`figure_parts`): the traces
    and every layout key are assigned whole, the template stays. A frame the camera sends through Dash
    gets one: Plotly then redraws a few numbers instead of a whole new figure."""
    data, layout = figure_parts(fig)
    patch = Patch()
    patch["data"] = data
    for key, value in layout.items():
        patch["layout"][key] = value
    return patch
