"""Small shared pieces: error messages, badges, panels."""

from __future__ import annotations

from typing import Any

from dash import dcc, html

from dashboard.figures import message_figure

GRAPH_CONFIG = {"displayModeBar": False, "responsive": True}  # small graphs: no Plotly toolbar


def error_alert(message: str, title: str = "Error") -> html.Div:
    """A readable error in the page (role=alert so that screen readers and tests find it)."""
    return html.Div(
        [html.Strong(f"{title}: "), html.Span(message)], className="cl-alert cl-alert-error", role="alert"
    )


def notice(message: str) -> html.Div:
    return html.Div(message, className="cl-notice")


def badge(text: str, tone: str = "neutral", **attrs: Any) -> html.Span:
    """tone: neutral, good, warn or danger."""
    return html.Span(text, className=f"cl-badge cl-badge-{tone}", **attrs)


def panel(title: str, children: Any, *, panel_id: str | None = None, extra: Any = None) -> html.Section:
    header = [html.H2(title)]
    if extra is not None:
        header.append(html.Div(extra, className="cl-panel-extra"))
    attrs = {"id": panel_id} if panel_id else {}
    return html.Section([html.Header(header), children], className="cl-panel", **attrs)


def placeholder_graph(graph_id: str, message: str, *, height: int, **attrs: Any) -> dcc.Graph:
    """A graph that says ``message`` (what to do to fill it) until a callback draws its figure."""
    return dcc.Graph(id=graph_id, figure=message_figure(message, height=height), config=GRAPH_CONFIG, **attrs)


def radio(radio_id: str, options: list[tuple[str, str]], value: str, class_name: str) -> dcc.RadioItems:
    """Inline radio buttons from ``(label, value)`` pairs."""
    return dcc.RadioItems(
        id=radio_id,
        options=[{"label": label, "value": v} for label, v in options],
        value=value,
        inline=True,
        className=class_name,
    )
