"""Pure figures of the GAN page: the training game (losses, D's scores) and the mode histogram."""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go


def _layout(fig: go.Figure, title: str, y: str, height: int = 260) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        xaxis_title="training step",
        yaxis_title=y,
        legend={"orientation": "h", "y": -0.3},
        template="plotly_white",
    )
    return fig


def loss_curves(snapshots: list[dict[str, Any]], selected: int | None = None) -> go.Figure:
    steps = [s["step"] for s in snapshots]
    fig = go.Figure()
    fig.add_scatter(x=steps, y=[s["g_loss"] for s in snapshots], name="G loss", mode="lines+markers")
    fig.add_scatter(x=steps, y=[s["d_loss"] for s in snapshots], name="D loss", mode="lines+markers")
    if selected is not None and 0 <= selected < len(steps):
        fig.add_vline(x=steps[selected], line_dash="dot", line_color="#888")
    return _layout(fig, "Losses", "BCE loss")


def score_curves(snapshots: list[dict[str, Any]], selected: int | None = None) -> go.Figure:
    """D's mean score on real and on generated digits; 0.5 is where D has to guess."""
    steps = [s["step"] for s in snapshots]
    fig = go.Figure()
    fig.add_scatter(x=steps, y=[s["d_real"] for s in snapshots], name="D(real)", mode="lines+markers")
    fig.add_scatter(x=steps, y=[s["d_fake"] for s in snapshots], name="D(fake)", mode="lines+markers")
    fig.add_hline(y=0.5, line_dash="dash", line_color="#aaa", annotation_text="has to guess")
    if selected is not None and 0 <= selected < len(steps):
        fig.add_vline(x=steps[selected], line_dash="dot", line_color="#888")
    fig.update_yaxes(range=[0, 1])
    return _layout(fig, "Discriminator's mean score", "P(real)")


def mode_histogram(modes: dict[str, Any]) -> go.Figure:
    labels = modes["labels"]
    missing = set(modes["missing"])
    colors = ["#d62728" if i in missing else "#1f77b4" for i in range(len(labels))]
    fig = go.Figure(go.Bar(x=labels, y=modes["histogram"], marker_color=colors))
    fig.update_layout(
        title=f"{modes['classifier']} on {modes['n']} generated digits "
        f"(mean confidence {modes['mean_confidence']:.2f})",
        height=260,
        margin={"l": 50, "r": 10, "t": 40, "b": 40},
        xaxis_title="class",
        yaxis_title="images",
        template="plotly_white",
    )
    return fig
