"""One filter's weights: an RGB picture for a first conv layer, else a heat map over its input channels."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

_BASE_LAYOUT: dict[str, Any] = {
    "margin": {"l": 8, "r": 8, "t": 30, "b": 8},
    "plot_bgcolor": "white",
    "paper_bgcolor": "white",
}


WRAP = 32  # input channels per row when a 1x1 kernel is drawn as a grid


def message_figure(message: str, height: int = 160) -> go.Figure:
    """An empty figure that says why there is nothing to plot."""
    fig = go.Figure()
    fig.add_annotation(
        text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font={"color": "#555"}
    )
    fig.update_layout(**_BASE_LAYOUT, height=height, xaxis={"visible": False}, yaxis={"visible": False})
    return fig


def _signed_heatmap(z: np.ndarray, bound: float | None = None, **trace: Any) -> go.Heatmap:
    """A heat map on a diverging scale symmetric around zero, ``±bound`` (default: the largest magnitude in
    ``z``); NaN cells, padding, are left out."""
    bound = bound or float(np.nanmax(np.abs(z))) or 1.0
    return go.Heatmap(
        z=z,
        colorscale="RdBu",
        reversescale=True,
        zmin=-bound,
        zmax=bound,
        colorbar={"thickness": 10, "len": 0.9},
        **trace,
    )


def filter_weights_figure(payload: dict[str, Any], bound: float | None = None) -> go.Figure:
    """``payload`` is the API's ``/layers/{layer}/weights/{index}`` answer; ``bound`` fixes the colour scale
    to ``±bound`` (two figures of one filter before and after training share one scale).

    - ``rgb`` present (first conv layer on RGB input): the kernel as a colour picture, scaled around grey.
    - a conv kernel (C_in, kh, kw): rows are kernel positions, columns input channels; with one input
      channel (a depthwise conv) the kh x kw kernel itself.
    - a linear row (in_features,): one row over the inputs.
    The colour scale is diverging and symmetric around zero so that the sign reads at a glance.
    """
    title = f"{payload.get('layer', '')} filter {payload.get('index', '')} weights"
    if payload.get("rgb") is not None:
        rgb = np.asarray(payload["rgb"], dtype=np.uint8)
        fig = go.Figure(go.Image(z=rgb, hovertemplate="row %{y}, col %{x}<br>rgb %{z}<extra></extra>"))
        fig.update_layout(
            **_BASE_LAYOUT,
            title={"text": title + " (RGB)", "font": {"size": 12}},
            height=220,
            xaxis={"visible": False},
            yaxis={"visible": False, "scaleanchor": "x"},
        )
        return fig

    values = np.asarray(payload["values"], dtype=np.float64)
    if values.ndim == 1:
        z, x_title, y_labels = values[None, :], "input feature", ["w"]
    elif values.ndim == 3 and values.shape[0] == 1:
        z, x_title, y_labels = values[0], "kernel column", [f"row {r}" for r in range(values.shape[1])]
    elif values.ndim == 3 and values.shape[1:] == (1, 1) and values.shape[0] > WRAP:
        return _wrapped_pointwise(values[:, 0, 0], title, bound)
    elif values.ndim == 3:
        c_in, kh, kw = values.shape
        z = values.reshape(c_in, kh * kw).T
        x_title = "input channel"
        y_labels = [f"({r},{c})" for r in range(kh) for c in range(kw)]
    else:
        return message_figure(f"Cannot draw weights of shape {list(values.shape)}.")
    fig = go.Figure(
        _signed_heatmap(
            z, bound, y=y_labels, hovertemplate=x_title + " %{x}, %{y}<br>w = %{z:.4f}<extra></extra>"
        )
    )
    fig.update_layout(
        **_BASE_LAYOUT,
        title={"text": title, "font": {"size": 12}},
        height=min(320, 120 + 18 * len(y_labels)),
        xaxis={"title": {"text": x_title, "font": {"size": 11}}},
        yaxis={"autorange": "reversed"},
    )
    return fig


def _wrapped_pointwise(w: np.ndarray, title: str, bound: float | None = None) -> go.Figure:
    """A 1x1 conv's weights, one per input channel, wrapped into rows of ``WRAP`` channels."""
    rows = -(-len(w) // WRAP)
    z = np.full(rows * WRAP, np.nan)
    z[: len(w)] = w
    z = z.reshape(rows, WRAP)
    channel = np.arange(rows * WRAP).reshape(rows, WRAP)
    fig = go.Figure(
        _signed_heatmap(
            z,
            bound,
            customdata=channel,
            hovertemplate="input channel %{customdata}<br>w = %{z:.4f}<extra></extra>",
            xgap=1,
            ygap=1,
        )
    )
    fig.update_layout(
        **_BASE_LAYOUT,
        title={
            "text": f"{title} (1×1 kernel, {len(w)} input channels, {WRAP} per row)",
            "font": {"size": 12},
        },
        height=min(340, 90 + 16 * rows),
        xaxis={"title": {"text": f"input channel mod {WRAP}", "font": {"size": 11}}},
        yaxis={
            "autorange": "reversed",
            "tickvals": list(range(rows)),
            "ticktext": [str(r * WRAP) for r in range(rows)],
        },
    )
    return fig
