"""The filter grid: display order, the mosaic cell each tile shows, and its escaped markup."""

from __future__ import annotations

from html.parser import HTMLParser

from dashboard.components.filter_detail import rank_of
from dashboard.components.filter_grid import filter_grid, sort_order, tile_style

CHANNELS = [
    {"index": 0, "mean": 0.5, "max": 1.0, "min": 0.0, "fraction_active": 0.5},
    {"index": 1, "mean": 2.0, "max": 2.5, "min": 0.0, "fraction_active": 0.9},
    {"index": 2, "mean": -1.0, "max": 0.0, "min": -2.0, "fraction_active": 0.0},
    {"index": 3, "mean": 0.5, "max": 3.0, "min": -1.0, "fraction_active": 0.4},
]


def test_sort_orders():
    assert sort_order(CHANNELS, "index") == [0, 1, 2, 3]
    assert sort_order(CHANNELS, "mean") == [1, 0, 3, 2]  # ties (0 and 3) by index
    assert sort_order(CHANNELS, "max") == [3, 1, 0, 2]
    assert rank_of(CHANNELS, 3, "max") == 1 and rank_of(CHANNELS, 2, "mean") == 4


def test_tile_style_cuts_the_right_cell_of_the_mosaic():
    grid = {"rows": 2, "cols": 2, "tile_h": 10, "tile_w": 10, "pad": 1}
    style = tile_style(3, grid, "/m.png", size=20)  # row 1, col 1, scale 2
    assert style["width"] == "20.00px" and style["height"] == "20.00px"
    assert style["backgroundSize"] == "46.00px 46.00px"  # (2*11+1)*2
    assert style["backgroundPosition"] == "-24.00px -24.00px"  # (1 + 1*11)*2


def test_grid_has_one_tile_per_channel_in_order_and_marks_silent_filters():
    acts = {
        "layer": "features.3",
        "channels": CHANNELS,
        "silent_channels": [2],
        "mosaic_grid": {"rows": 2, "cols": 2, "tile_h": 4, "tile_w": 4, "pad": 1},
        "mosaic_url": "/api/v1/artifacts/abc/mosaic_per_channel.png",
    }
    markup = filter_grid(acts, sort_order(CHANNELS, "max"))
    assert markup.dangerously_allow_html is True
    tiles = TileParser.parse(markup.children)
    assert [t["data-index"] for t in tiles] == ["3", "1", "0", "2"]
    assert ["is-silent" in t["class"] for t in tiles] == [False, False, False, True]
    assert all("background-image:url(/api-artifacts/abc/mosaic_per_channel.png)" in t["style"] for t in tiles)
    assert 'data-count="4"' in markup.children and 'data-layer="features.3"' in markup.children


def test_grid_markup_escapes_what_comes_from_the_api():
    acts = {
        "layer": 'x"><script>alert(1)</script>',
        "channels": CHANNELS[:1],
        "silent_channels": [],
        "mosaic_grid": {"rows": 1, "cols": 1, "tile_h": 4, "tile_w": 4, "pad": 1},
        "mosaic_url": "/api/v1/artifacts/abc/m.png",
    }
    assert "<script>" not in filter_grid(acts, [0]).children


class TileParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tiles: list[dict[str, str]] = []

    def handle_starttag(self, tag, attrs):
        if tag == "button":
            self.tiles.append(dict(attrs))

    @classmethod
    def parse(cls, markup: str) -> list[dict[str, str]]:
        parser = cls()
        parser.feed(markup)
        return parser.tiles


def test_a_second_grid_on_a_page_has_its_own_id_so_that_its_tiles_select_nothing():
    acts = {
        "layer": "features.3",
        "channels": CHANNELS,
        "mosaic_grid": {"rows": 2, "cols": 2, "tile_h": 4, "tile_w": 4, "pad": 1},
        "mosaic_url": "/api/v1/artifacts/abc/mosaic_per_channel.png",
    }
    assert filter_grid(acts, [0, 1]).children.startswith('<div id="filter-grid-tiles" ')  # static/explore.js
    assert filter_grid(acts, [0, 1], grid_id="compare-grid-a").children.startswith(
        '<div id="compare-grid-a" '
    )
