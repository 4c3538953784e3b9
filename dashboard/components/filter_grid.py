"""The filter grid: every channel of a layer as a tile cut from the API's mosaic PNG (one request).

Tiles are ``html.Button``s with pattern-matching ids ``{"type": "filter-tile", "index": i}``; each shows
its part of the mosaic through CSS ``background-position``, so sorting only reorders buttons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from dash import html

from dashboard.api_client import browser_url

SortKey = Literal["index", "mean", "max"]
SORT_OPTIONS = [
    {"label": "channel index", "value": "index"},
    {"label": "mean activation ↓", "value": "mean"},
    {"label": "max activation ↓", "value": "max"},
]


def sort_order(channels: Sequence[dict[str, Any]], by: SortKey | str = "index") -> list[int]:
    """Channel indices in display order: by index, or by mean/max activation, largest first (ties by index)."""
    if by in ("mean", "max"):
        return [c["index"] for c in sorted(channels, key=lambda c: (-float(c[by]), c["index"]))]
    return [c["index"] for c in sorted(channels, key=lambda c: c["index"])]


def tile_size(n_channels: int) -> int:
    """Display size of one tile in CSS pixels: bigger when there are few channels."""
    if n_channels <= 16:
        return 96
    if n_channels <= 64:
        return 64
    if n_channels <= 256:
        return 44
    return 30


def tile_style(index: int, grid: dict[str, int], mosaic_src: str, size: int) -> dict[str, str]:
    """CSS that shows channel ``index`` of the mosaic in a ``size``-pixel box (row-major mosaic order)."""
    th, tw, pad, rows, cols = grid["tile_h"], grid["tile_w"], grid["pad"], grid["rows"], grid["cols"]
    scale = size / max(th, tw)
    r, c = divmod(index, cols)
    width = (cols * (tw + pad) + pad) * scale
    height = (rows * (th + pad) + pad) * scale
    x = (pad + c * (tw + pad)) * scale
    y = (pad + r * (th + pad)) * scale
    return {
        "width": f"{tw * scale:.2f}px",
        "height": f"{th * scale:.2f}px",
        "backgroundImage": f"url({mosaic_src})",
        "backgroundSize": f"{width:.2f}px {height:.2f}px",
        "backgroundPosition": f"-{x:.2f}px -{y:.2f}px",
    }


def filter_tile(channel: dict[str, Any], silent: bool, style: dict[str, str]) -> html.Button:
    i = channel["index"]
    title = f"filter {i}: mean {channel['mean']:.3g}, max {channel['max']:.3g}" + (
        " (silent)" if silent else ""
    )
    return html.Button(
        [html.Span(str(i), className="cl-tile-index"), html.Span("silent", className="cl-tile-silent")]
        if silent
        else html.Span(str(i), className="cl-tile-index"),
        id={"type": "filter-tile", "index": i},
        className="cl-tile" + (" is-silent" if silent else ""),
        style=style,
        title=title,
        n_clicks=0,
        **{"data-index": str(i)},
    )


def filter_grid(activations: dict[str, Any], order: Sequence[int]) -> html.Div:
    """``activations`` is the API's ``POST /activations`` answer."""
    channels = {c["index"]: c for c in activations["channels"]}
    silent = set(activations.get("silent_channels", []))
    grid = activations["mosaic_grid"]
    src = browser_url(activations["mosaic_url"])
    size = tile_size(len(channels))
    return html.Div(
        [filter_tile(channels[i], i in silent, tile_style(i, grid, src, size)) for i in order],
        className="cl-grid",
        id="filter-grid-tiles",
        **{"data-count": str(len(order)), "data-layer": activations["layer"]},
    )


def grid_summary(activations: dict[str, Any]) -> str:
    n = len(activations["channels"])
    silent = len(activations.get("silent_channels", []))
    shape = "×".join(str(s) for s in activations["shape"])
    lo, hi = activations.get("value_range", [0.0, 0.0])
    return (
        f"{activations['layer']} ({activations.get('layer_type', '')}) · {n} channels · output {shape} · "
        f"values {lo:.3g}…{hi:.3g} · {silent} silent"
    )
