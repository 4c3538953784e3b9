"""Pure figures of the recurrent page: a digit's states over time, the prediction as it forms, gradient flow,
gate saturation, the forget-gate histogram and the hidden states projected."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.figures.projection import PALETTE

# Gates squashed by a sigmoid (0..1, drawn on a sequential scale); the rest (tanh, cell state) are signed.
SIGMOID_GATES = ("input", "forget", "output", "reset", "update")
GATE_TITLES = {"cell": "cell candidate g", "new": "new state n"}
ROW_PX = 150  # height of one units-x-time heat map


def _layout(fig: go.Figure, title: str, height: int, **kw: Any) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 13}},
        height=height,
        margin={"l": 60, "r": 10, "t": 40, "b": 40},
        template="plotly_white",
        **kw,
    )
    return fig


def state_rows(arrays: dict[str, np.ndarray]) -> list[tuple[str, str, np.ndarray]]:
    """(name, title, units x time) in drawing order: hidden state, each gate, cell state."""
    rows = [("hidden", "hidden state h", arrays["hidden"])] if "hidden" in arrays else []
    for name, arr in arrays.items():
        if name.startswith("gate_"):
            gate = name.removeprefix("gate_")
            rows.append((name, GATE_TITLES.get(gate, f"{gate} gate"), arr))
    if "cell" in arrays:
        rows.append(("cell", "cell state c", arrays["cell"]))
    return rows


def _heatmap(name: str, z: np.ndarray, bar_y: float, bar_len: float) -> go.Heatmap:
    t = np.arange(1, z.shape[1] + 1)
    bar = {"thickness": 10, "len": bar_len, "y": bar_y, "yanchor": "middle"}
    common = {
        "z": z,
        "x": t,
        "colorbar": bar,
        "name": name,
        "hovertemplate": "step %{x}, unit %{y}: %{z:.3f}",
    }
    if name.removeprefix("gate_") in SIGMOID_GATES:
        return go.Heatmap(colorscale="Viridis", zmin=0.0, zmax=1.0, **common)
    bound = float(np.abs(z).max()) or 1.0
    return go.Heatmap(colorscale="RdBu", reversescale=True, zmin=-bound, zmax=bound, **common)


def states_figure(
    arrays: dict[str, np.ndarray], inputs: Sequence[float] = (), pixels: Sequence[int] = (), title: str = ""
) -> go.Figure:
    """The input pixel read at each step, then every state as a units-x-time heat map on one time axis."""
    rows = state_rows(arrays)
    n = len(rows) + 1
    heights = [0.18] + [1.0] * len(rows)
    fig = make_subplots(
        rows=n,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.04 if n > 2 else 0.08,
        row_heights=heights,
        subplot_titles=["input pixel", *(r[1] for r in rows)],
    )
    where = [f"pixel ({p // 8}, {p % 8})" for p in pixels] if len(pixels) == len(inputs) else None
    fig.add_trace(
        go.Heatmap(
            z=[list(inputs)],
            x=np.arange(1, len(inputs) + 1),
            colorscale="Greys",
            reversescale=True,
            showscale=False,
            name="input",
            customdata=[where] if where else None,
            hovertemplate="step %{x}: %{customdata} = %{z:.2f}<extra></extra>"
            if where
            else "step %{x}: %{z:.2f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    for i, (name, _title, z) in enumerate(rows, start=2):
        dom = fig.layout[f"yaxis{i}"].domain
        fig.add_trace(_heatmap(name, z, (dom[0] + dom[1]) / 2, dom[1] - dom[0]), row=i, col=1)
        fig.update_yaxes(title_text="unit", row=i, col=1)
    fig.update_xaxes(title_text="time step", row=n, col=1)
    fig.update_annotations(font_size=12)
    return _layout(fig, title, 90 + ROW_PX * len(rows) + 40)


def prediction_figure(
    probabilities: Sequence[Sequence[float]],
    labels: Sequence[str],
    predicted: Sequence[str],
    *,
    true_label: str | None = None,
    settled_at: int | None = None,
) -> go.Figure:
    """P(class) after each step as a heat map, the top class of each step marked on it."""
    z = np.asarray(probabilities, dtype=float).T  # classes x time
    steps = np.arange(1, z.shape[1] + 1)
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=steps,
            y=list(labels),
            colorscale="Blues",
            zmin=0.0,
            zmax=1.0,
            colorbar={"thickness": 10, "title": {"text": "P"}},
            hovertemplate="step %{x}: P(%{y}) = %{z:.3f}<extra></extra>",
            name="P(class)",
        )
    )
    fig.add_scatter(
        x=steps,
        y=list(predicted),
        mode="markers",
        marker={"symbol": "circle-open", "color": "#d62728", "size": 6},
        name="top class",
        hovertemplate="step %{x}: top class %{y}<extra></extra>",
    )
    if settled_at is not None and len(steps):
        fig.add_vline(
            x=settled_at - 0.5, line_dash="dot", line_color="#555", annotation_text=f"settles at {settled_at}"
        )
    title = "The prediction as it forms: P(class) after each step"
    if true_label is not None:
        title += f" (true class {true_label})"
    fig.update_yaxes(title_text="class", type="category")
    fig.update_xaxes(title_text="time step")
    return _layout(fig, title, 300, showlegend=False)


def gradient_flow_figure(flow: dict[str, Any]) -> go.Figure:
    """Mean ||dLoss/dh_t|| against t, one line per model, on a log scale: the vanishing-gradient curve."""
    fig = go.Figure()
    for k, (model, curve) in enumerate(flow.get("models", {}).items()):
        norms = curve["norms"]
        fig.add_scatter(
            x=list(range(1, len(norms) + 1)),
            y=norms,
            mode="lines",
            name=f"{model} (first/last {curve['first_to_last_ratio']:.2g})",
            line={"color": PALETTE[k % len(PALETTE)]},
            hovertemplate=f"{model} step %{{x}}: %{{y:.3g}}<extra></extra>",
        )
    fig.update_yaxes(type="log", title_text="mean ||dLoss/dh_t||", exponentformat="power")
    fig.update_xaxes(title_text="time step t")
    n = flow.get("images", 0)
    snapshot = flow.get("snapshot")
    when = f"at training snapshot {snapshot}" if snapshot else "of the trained models"
    return _layout(
        fig,
        f"Gradient flow {when} ({n} digits)",
        320,
        legend={"orientation": "h", "y": -0.25},
    )


def exploding_figure(exploding: dict[str, Any]) -> go.Figure:
    """The RNN initialised to explode, without and with clipping, and the clip norm."""
    fig = go.Figure()
    styles = {
        "exploding_rnn": ("no clipping", "#d62728", "solid"),
        "exploding_rnn_clipped": ("", "#1f77b4", "dash"),
    }
    for model, curve in exploding.get("models", {}).items():
        label, color, dash = styles.get(model, (model, "#7f7f7f", "solid"))
        label = label or f"clipped to {curve['clip']:g}"
        norms = curve["norms"]
        fig.add_scatter(
            x=list(range(1, len(norms) + 1)),
            y=norms,
            mode="lines",
            name=label,
            line={"color": color, "dash": dash},
            hovertemplate=f"{label} step %{{x}}: %{{y:.3g}}<extra></extra>",
        )
    clip = exploding.get("clip")
    if clip and fig.data:  # a trace, not an hline: a line's annotation lands off its value on a log axis
        steps = len(fig.data[0].x)
        fig.add_scatter(
            x=[1, steps],
            y=[clip, clip],
            mode="lines",
            name=f"clip norm {clip:g}",
            line={"color": "#888", "dash": "dot", "width": 1},
            hoverinfo="skip",
        )
    fig.update_yaxes(type="log", title_text="mean ||dLoss/dh_t||", exponentformat="power")
    fig.update_xaxes(title_text="time step t")
    gain = exploding.get("scale")
    return _layout(
        fig,
        f"A tanh RNN initialised to explode (gain {gain:g})" if gain else "A tanh RNN initialised to explode",
        320,
        legend={"orientation": "h", "y": -0.25},
    )


def saturation_figure(stats: dict[str, Any]) -> go.Figure:
    """Each unit of each gate: the fraction of steps left-saturated (x) against right-saturated (y)."""
    fig = go.Figure()
    for k, (gate, s) in enumerate(stats.get("gates", {}).items()):
        left, right = s["left_saturated"], s["right_saturated"]
        fig.add_scatter(
            x=left,
            y=right,
            mode="markers",
            name=f"{gate} gate",
            customdata=list(range(len(left))),
            marker={"color": PALETTE[k % len(PALETTE)], "size": 7, "opacity": 0.8},
            hovertemplate=f"{gate} unit %{{customdata}}: left %{{x:.1%}}, right %{{y:.1%}}<extra></extra>",
        )
    fig.add_scatter(
        x=[0, 1],
        y=[1, 0],
        mode="lines",
        line={"color": "#bbb", "dash": "dot"},
        showlegend=False,
        hoverinfo="skip",
    )
    th = stats.get("thresholds", {"left": 0.1, "right": 0.9})
    fig.update_xaxes(range=[-0.02, 1.02], title_text=f"fraction of steps left-saturated (< {th['left']:g})")
    fig.update_yaxes(range=[-0.02, 1.02], title_text=f"fraction right-saturated (> {th['right']:g})")
    return _layout(
        fig,
        f"Gate saturation per unit, {stats.get('model', '')}",
        360,
        legend={"orientation": "h", "y": -0.2},
    )


def gate_histogram_figure(histogram: dict[str, Any], model: str = "") -> go.Figure:
    """The histogram of one gate's values (forget gate, GRU: update gate) over every step of the dataset."""
    edges = np.asarray(histogram["edges"], dtype=float)
    counts = np.asarray(histogram["counts"], dtype=float)
    fig = go.Figure(
        go.Bar(
            x=(edges[:-1] + edges[1:]) / 2,
            y=counts,
            width=np.diff(edges),
            marker_color="#1f77b4",
            hovertemplate="%{x:.2f}: %{y:,.0f} values<extra></extra>",
            name=histogram["gate"],
        )
    )
    for x in (0.1, 0.9):
        fig.add_vline(x=x, line_dash="dot", line_color="#888")
    title = (
        f"{model} {histogram['gate']} gate: {histogram['share_below_0_1']:.1%} below 0.1, "
        f"{histogram['share_above_0_9']:.1%} above 0.9, {histogram['share_between']:.1%} in between"
    )
    fig.update_xaxes(range=[0, 1], title_text=f"{histogram['gate']} gate value")
    fig.update_yaxes(title_text="values (unit x step x digit)")
    return _layout(fig, title.strip(), 360, bargap=0.05, showlegend=False)


def hidden_projection_figure(
    tracks: Sequence[dict[str, Any]], *, color_by: str = "time", selected: int | None = None, title: str = ""
) -> go.Figure:
    """Each digit's hidden states as a path through the first two principal components.

    ``tracks``: ``{"index", "label", "xy": (T, 2)}`` per digit; colour by time step or by class; the
    ``selected`` digit's path is drawn on top, from its start to its end."""
    fig = go.Figure()
    if color_by == "class":
        classes = sorted({t["label"] for t in tracks}, key=str)
        for k, cls in enumerate(classes):
            xs: list[float | None] = []
            ys: list[float | None] = []
            data: list[list[int] | None] = []
            for t in (t for t in tracks if t["label"] == cls):
                xy = np.asarray(t["xy"])
                xs += [*xy[:, 0].tolist(), None]
                ys += [*xy[:, 1].tolist(), None]
                data += [[t["index"], s] for s in range(1, len(xy) + 1)] + [None]
            fig.add_scatter(
                x=xs,
                y=ys,
                mode="lines+markers",
                name=f"class {cls}",
                customdata=data,
                line={"color": PALETTE[k % len(PALETTE)], "width": 1},
                marker={"size": 4},
                hovertemplate="digit #%{customdata[0]}, step %{customdata[1]}<extra>"
                + f"class {cls}</extra>",
            )
    else:
        for t in tracks:
            xy = np.asarray(t["xy"])
            fig.add_scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="lines",
                line={"color": "#ccc", "width": 1},
                showlegend=False,
                hoverinfo="skip",
            )
        xy = np.concatenate([np.asarray(t["xy"]) for t in tracks]) if tracks else np.zeros((0, 2))
        steps = [s for t in tracks for s in range(1, len(t["xy"]) + 1)]
        data = [[t["index"], s] for t in tracks for s in range(1, len(t["xy"]) + 1)]
        fig.add_scatter(
            x=xy[:, 0],
            y=xy[:, 1],
            mode="markers",
            name="hidden state",
            customdata=data,
            marker={
                "size": 5,
                "color": steps,
                "colorscale": "Viridis",
                "showscale": True,
                "colorbar": {"title": {"text": "step"}, "thickness": 10},
            },
            hovertemplate="digit #%{customdata[0]}, step %{customdata[1]}<extra></extra>",
            showlegend=False,
        )
    chosen = next((t for t in tracks if t["index"] == selected), None)
    if chosen is not None:
        xy = np.asarray(chosen["xy"])
        fig.add_scatter(
            x=xy[:, 0],
            y=xy[:, 1],
            mode="lines",
            name=f"digit #{chosen['index']} ({chosen['label']})",
            line={"color": "#111", "width": 3},
            hoverinfo="skip",
        )
        fig.add_scatter(
            x=[xy[0, 0], xy[-1, 0]],
            y=[xy[0, 1], xy[-1, 1]],
            mode="markers+text",
            text=["start", "end"],
            textposition="top center",
            marker={"color": "#111", "size": 9, "symbol": ["circle-open", "x"]},
            showlegend=False,
            hoverinfo="skip",
        )
    fig.update_xaxes(title_text="PC 1", zeroline=False)
    fig.update_yaxes(title_text="PC 2", zeroline=False)
    return _layout(
        fig, title, 440, legend={"font": {"size": 11}, "orientation": "h", "y": -0.18}, hovermode="closest"
    )
