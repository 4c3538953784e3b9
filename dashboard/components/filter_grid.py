"""The filter grid: every channel of a layer as a tile cut from the API's mosaic PNG (one request).

Each tile is a ``<button data-index=i>`` that shows its part of the mosaic through CSS
``background-position``, so sorting only reorders buttons. The grid is one component of plain HTML
(``dcc.Markdown`` with raw HTML, built here from numbers and escaped strings) rather than one Dash
component per tile with pattern-matching ids: with Lite0's conv_head (1280 channels) per-tile
components took 13-55 s to appear in the browser, this takes about 1 s (bench/bench_dashboard.py).
Clicks reach Dash through one delegated listener (static/explore.js sets the ``tile-click`` store).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any, Literal

from dash import dcc

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


def grid_summary(activations: dict[str, Any]) -> str:
    n = len(activations["channels"])
    silent = len(activations.get("silent_channels", []))
    shape = "×".join(str(s) for s in activations["shape"])
    lo, hi = activations.get("value_range", [0.0, 0.0])
    return (
        f"{activations['layer']} ({activations.get('layer_type', '')}) · {n} channels · output {shape} · "
        f"values {lo:.3g}…{hi:.3g} · {silent} silent"
    )


def _css(style: dict[str, str]) -> str:
    names = {
        "backgroundImage": "background-image",
        "backgroundSize": "background-size",
        "backgroundPosition": "background-position",
    }
    return ";".join(f"{names.get(k, k)}:{v}" for k, v in style.items())


def grid_tiles(activations: dict[str, Any], order: Sequence[int]) -> list[dict[str, Any]]:
    """The tiles of the API's ``POST /activations`` answer in ``order``: per channel its ``index``, hover
    ``title``, whether it is ``silent``, and the inline CSS ``style`` that cuts it from the mosaic. The
    grid's HTML is built from these, and the camera's live frames send them as they are (static/camera.js
    rewrites the tiles already on the page)."""
    channels = {c["index"]: c for c in activations["channels"]}
    silent = set(activations.get("silent_channels", []))
    grid = activations["mosaic_grid"]
    src = browser_url(activations["mosaic_url"])
    size = tile_size(len(channels))
    tiles = []
    for i in order:
        c = channels[i]
        s = i in silent
        title = f"filter {i}: mean {c['mean']:.3g}, max {c['max']:.3g}" + (" (silent)" if s else "")
        tiles.append({"index": i, "title": title, "silent": s, "style": _css(tile_style(i, grid, src, size))})
    return tiles


def filter_grid(
    activations: dict[str, Any], order: Sequence[int], grid_id: str = "filter-grid-tiles"
) -> dcc.Markdown:
    """Every channel of the API's ``POST /activations`` answer as a tile, in ``order``. Clicks on the tiles
    of the grid with the default ``grid_id`` select a filter (static/explore.js); other grids only show."""
    tiles = [
        f'<button class="cl-tile{" is-silent" if t["silent"] else ""}" data-index="{t["index"]}" '
        f'title="{escape(t["title"])}" style="{escape(t["style"])}">{t["index"]}</button>'
        for t in grid_tiles(activations, order)
    ]
    return dcc.Markdown(
        f'<div id="{escape(grid_id)}" class="cl-grid" data-count="{len(order)}" '
        f'data-layer="{escape(activations["layer"])}">' + "".join(tiles) + "</div>",
        dangerously_allow_html=True,
    )
