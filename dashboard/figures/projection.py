"""The projection scatter: pure data -> go.Figure (no Dash, no HTTP)."""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

# Plotly's and D3's qualitative palettes back to back: 20 distinguishable class colours.
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)  # fmt: skip
SVG_MAX_POINTS = 3000  # SVG up to here (hover by DOM point, crisp export); WebGL for bigger sets
UIREVISION = "projection"  # keeps zoom and legend state while frames replace the points


def _markers(trace: Any, xs: list[float], ys: list[float], idx: Iterable[int], **kw: Any) -> Any:
    """A marker trace of the points ``idx`` (their positions are the customdata hover and clicks read)."""
    idx = list(idx)
    return trace(x=[xs[i] for i in idx], y=[ys[i] for i in idx], mode="markers", customdata=idx, **kw)


def projection_figure(
    coords: Sequence[Sequence[float]],
    *,
    color_by: str = "label",
    labels: Sequence[int] | None = None,
    classes: Sequence[str] = (),
    predictions: Sequence[int] | None = None,
    model_labels: Sequence[str] = (),
    values: Sequence[float] | None = None,
    value_name: str = "activation",
    title: str = "",
    height: int = 560,
) -> go.Figure:
    """One trace per class (colour by true or predicted label) or one trace coloured by ``values``.

    Every point carries its dataset index in ``customdata`` (hover shows its thumbnail; click opens it).
    """
    n = len(coords)
    xs = [c[0] for c in coords]
    ys = [c[1] for c in coords]
    fig = go.Figure()
    trace = go.Scatter if n <= SVG_MAX_POINTS else go.Scattergl
    names = _class_names(color_by, labels, classes, predictions, model_labels, n)
    points = functools.partial(_markers, trace, xs, ys)
    if color_by == "filter" and values is not None and len(values) == n:
        fig.add_trace(
            points(
                range(n),
                text=[names.get(i, "") for i in range(n)] if names else None,
                marker={
                    "size": 5,
                    "color": list(values),
                    "colorscale": "Viridis",
                    "showscale": True,
                    "colorbar": {"title": {"text": value_name}},
                },
                hovertemplate="#%{customdata} %{text}<br>"
                + value_name
                + " %{marker.color:.3g}<extra></extra>",
                name=value_name,
            )
        )
    elif names:
        groups: dict[str, list[int]] = {}
        for i in range(n):
            groups.setdefault(names[i], []).append(i)
        order = [c for c in (classes if color_by == "label" else model_labels) if c in groups] or sorted(
            groups
        )
        order += [g for g in groups if g not in order]
        for k, name in enumerate(order):
            idx = groups[name]
            fig.add_trace(
                points(
                    idx,
                    name=name,
                    marker={"size": 5, "color": PALETTE[k % len(PALETTE)]},
                    hovertemplate="#%{customdata} " + name.replace("%", "%%") + "<extra></extra>",
                )
            )
    else:
        fig.add_trace(
            points(
                range(n),
                marker={"size": 5},
                name="points",
                hovertemplate="#%{customdata}<extra></extra>",
            )
        )
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        height=height,
        margin={"l": 10, "r": 10, "t": 36 if title else 10, "b": 10},
        uirevision=UIREVISION,
        legend={"itemsizing": "constant", "font": {"size": 11}},
        plot_bgcolor="#fff",
        xaxis={"showgrid": False, "zeroline": False, "showticklabels": False},
        yaxis={"showgrid": False, "zeroline": False, "showticklabels": False, "scaleanchor": "x"},
        hovermode="closest",
        dragmode="pan",
    )
    return fig


def _class_names(
    color_by: str,
    labels: Sequence[int] | None,
    classes: Sequence[str],
    predictions: Sequence[int] | None,
    model_labels: Sequence[str],
    n: int,
) -> dict[int, str]:
    if color_by == "predicted" and predictions is not None and len(predictions) == n:
        return {
            i: (model_labels[p] if 0 <= p < len(model_labels) else str(p)) for i, p in enumerate(predictions)
        }
    if labels is not None and len(labels) == n:
        return {i: (classes[lab] if 0 <= lab < len(classes) else str(lab)) for i, lab in enumerate(labels)}
    return {}


def small_multiples(
    panels: list[tuple[str, list[list[float]]]],
    *,
    colours: list[float] | list[int] | None = None,
    continuous: bool = False,
    colour_name: str = "",
    title: str = "",
    height: int = 300,
) -> go.Figure:
    """Several 2-D embeddings of the same points side by side, one colouring shared by all (class index,
    or a continuous value with a colour bar)."""
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=1, cols=max(len(panels), 1), subplot_titles=[t for t, _ in panels])
    for i, (_t, coords) in enumerate(panels, start=1):
        xy = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        marker: dict[str, Any] = {"size": 3}
        if colours is not None:
            marker["color"] = list(colours)
            marker["colorscale"] = "Viridis" if continuous else "Turbo"
            if continuous:
                marker.update(
                    cmin=0, cmax=1, showscale=i == 1, colorbar={"title": colour_name, "thickness": 10}
                )
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                marker=marker,
                showlegend=False,
                hovertemplate=f"{colour_name} %{{marker.color}}<extra></extra>"
                if colours is not None
                else None,
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(showticklabels=False, row=1, col=i)
        fig.update_yaxes(showticklabels=False, row=1, col=i)
    fig.update_layout(
        height=height, title=title, margin={"l": 20, "r": 20, "t": 60, "b": 20}, template="plotly_white"
    )
    return fig
