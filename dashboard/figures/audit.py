"""Pure figures of the audit page: API data in, ``go.Figure`` out."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

KIND_COLOURS = {"dead": "#b00020", "saturated": "#e07000", "low_variance": "#7b5ea7", "redundant": "#1f77b4"}


def _layout(fig: go.Figure, height: int, **kw: Any) -> go.Figure:
    fig.update_layout(
        height=height, margin={"l": 50, "r": 20, "t": 30, "b": 40}, template="plotly_white", **kw
    )
    return fig


def correlation_heatmap(
    correlation: np.ndarray, order: list[int], flags: dict[int, str] | None = None, title: str = ""
) -> go.Figure:
    """The filter-correlation matrix with rows and columns in cluster order; flagged filters are marked
    on both axes in their finding's colour. Hover shows the filter numbers and the correlation."""
    corr = np.asarray(correlation, dtype=np.float32)
    order = list(order) if order else list(range(corr.shape[0]))
    ordered = corr[np.ix_(order, order)]
    labels = [str(i) for i in order]
    fig = go.Figure(
        go.Heatmap(
            z=ordered,
            x=labels,
            y=labels,
            zmin=-1,
            zmax=1,
            colorscale="RdBu_r",
            colorbar={"title": "r", "thickness": 12},
            hovertemplate="filter %{y} vs %{x}: r = %{z:.3f}<extra></extra>",
        )
    )
    flags = flags or {}
    marked = [(i, kind) for i, kind in flags.items() if i in order]
    for kind in sorted({k for _, k in marked}):
        pos = [str(i) for i, k in marked if k == kind]
        fig.add_trace(
            go.Scatter(
                x=pos,
                y=[labels[-1]] * len(pos),
                mode="markers",
                marker={"symbol": "triangle-down", "size": 9, "color": KIND_COLOURS.get(kind, "#000")},
                name=kind,
                hovertemplate="filter %{x}: " + kind + "<extra></extra>",
            )
        )
    fig.update_xaxes(type="category", showticklabels=len(order) <= 64, title="filter (cluster order)")
    fig.update_yaxes(type="category", showticklabels=len(order) <= 64, autorange="reversed")
    return _layout(fig, 520, title=title, legend={"orientation": "h", "y": -0.12})


def separability_figure(report: dict[str, Any]) -> go.Figure:
    """k-NN purity of each layer's pooled features, input to output."""
    points = report.get("separability") or []
    fig = go.Figure(
        go.Scatter(
            x=[p["layer"] for p in points],
            y=[p["purity"] for p in points],
            mode="lines+markers",
            hovertemplate="%{x}: purity %{y:.3f}<extra></extra>",
        )
    )
    fig.update_yaxes(range=[0, 1.02], title="k-NN purity")
    fig.update_xaxes(type="category")
    return _layout(fig, 320, title="Class separability per layer")


def cka_figure(report: dict[str, Any]) -> go.Figure:
    """Linear CKA between the audited layers."""
    cka = report.get("cka") or {"layers": [], "matrix": []}
    return cka_heatmap(cka["matrix"], cka["layers"], cka["layers"], "Layer similarity (linear CKA)")


def cka_heatmap(
    matrix: list[list[float]], rows: list[str], cols: list[str], title: str, height: int = 440
) -> go.Figure:
    """A CKA matrix on [0, 1]: ``rows`` top to bottom, ``cols`` left to right (labels up to 30 a side)."""
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=cols,
            y=rows,
            zmin=0,
            zmax=1,
            colorscale="Viridis",
            hovertemplate="%{y} ~ %{x}: CKA %{z:.3f}<extra></extra>",
        )
    )
    fig.update_xaxes(type="category", showticklabels=len(cols) <= 30)
    fig.update_yaxes(type="category", showticklabels=len(rows) <= 30, autorange="reversed")
    return _layout(fig, height, title=title)


def filter_stats_figure(layer: dict[str, Any], selected: int | None = None) -> go.Figure:
    """Active share of every filter of a layer (the dead ones at zero), the selected one highlighted."""
    share = layer.get("active_share") or []
    colours = ["#d62728" if i == selected else "#7f7f7f" for i in range(len(share))]
    fig = go.Figure(
        go.Bar(
            x=list(range(len(share))),
            y=share,
            marker={"color": colours},
            hovertemplate="filter %{x}: positive on %{y:.1%} of positions<extra></extra>",
        )
    )
    fig.update_yaxes(range=[0, 1], title="share of positions > 0", tickformat=".0%")
    fig.update_xaxes(title=f"filter of {layer.get('name', '')}")
    return _layout(fig, 220)


def checkpoint_updates_figure(result: dict[str, Any]) -> go.Figure:
    """Relative weight update per layer for each compared pair (per epoch when the names carry epochs)."""
    fig = go.Figure()
    per_epoch = all(c.get("epochs") for c in result.get("comparisons", []))
    for c in result.get("comparisons", []):
        scale = c["epochs"] if per_epoch else 1.0
        fig.add_trace(
            go.Bar(
                x=[layer["layer"] for layer in c["layers"]],
                y=[layer["relative_update"] / scale for layer in c["layers"]],
                name=f"{c['a'].split(':')[-1]} → {c['b'].split(':')[-1]}",
                hovertemplate="%{x}: %{y:.4f}<extra></extra>",
            )
        )
    fig.update_yaxes(title="‖ΔW‖/‖W‖" + (" per epoch" if per_epoch else ""))
    fig.update_xaxes(type="category")
    return _layout(fig, 340, barmode="group", title="Weight updates between checkpoints")


def sparsity_curve_figure(report: dict[str, Any]) -> go.Figure:
    """Share of activations at the floor and Hoyer sparsity of each layer, input to output."""
    curve = report.get("sparsity") or {"layers": [], "zero_share": [], "hoyer": []}
    fig = go.Figure(
        [
            go.Scatter(
                x=curve["layers"],
                y=curve["zero_share"],
                mode="lines+markers",
                name="share at the floor (zeros)",
                hovertemplate="%{x}: %{y:.1%} at the floor<extra></extra>",
            ),
            go.Scatter(
                x=curve["layers"],
                y=curve["hoyer"],
                mode="lines+markers",
                name="Hoyer sparsity",
                hovertemplate="%{x}: Hoyer %{y:.3f}<extra></extra>",
            ),
        ]
    )
    fig.update_yaxes(range=[0, 1.02], title="sparsity")
    fig.update_xaxes(type="category", showticklabels=len(curve["layers"]) <= 40, title="depth")
    return _layout(fig, 320, title="Sparsity over depth", legend={"orientation": "h", "y": -0.3})


def filter_sparsity_figure(layer: dict[str, Any]) -> go.Figure:
    """Each filter of one layer: its share of activations at the floor and its Hoyer sparsity."""
    sp = layer.get("sparsity") or {"filters": {"zero_share": [], "hoyer": []}}
    filters = list(range(len(sp["filters"]["hoyer"])))
    fig = go.Figure(
        [
            go.Bar(
                x=filters,
                y=sp["filters"]["zero_share"],
                name="share at the floor",
                opacity=0.7,
                hovertemplate="filter %{x}: %{y:.1%} at the floor<extra></extra>",
            ),
            go.Scatter(
                x=filters,
                y=sp["filters"]["hoyer"],
                mode="markers",
                name="Hoyer",
                hovertemplate="filter %{x}: Hoyer %{y:.3f}<extra></extra>",
            ),
        ]
    )
    fig.update_yaxes(range=[0, 1.02])
    fig.update_xaxes(title="filter")
    return _layout(
        fig, 300, title=f"Sparsity per filter of {layer['name']}", legend={"orientation": "h", "y": -0.3}
    )
