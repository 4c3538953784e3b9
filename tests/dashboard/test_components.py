"""Pure pieces of the explore page: URL state, layer grouping, grid order and geometry, neighbours, images."""

from __future__ import annotations

import hashlib
import io
from html.parser import HTMLParser

import numpy as np
import pytest
from PIL import Image

from dashboard.components.filter_detail import neighbour, rank_of
from dashboard.components.filter_grid import filter_grid, sort_order, tile_style
from dashboard.images import UnknownImageError, gallery, image_bytes, sample_png, store_upload
from dashboard.layers import group_layers, weights_source_layer
from dashboard.state import ExploreState


def L(name, kind="conv", channels=8, shape=None, parent=None):
    parent = parent if parent is not None else name.rpartition(".")[0]
    shape = shape if shape is not None else [channels, 4, 4]
    return {
        "name": name,
        "type": kind.title(),
        "kind": kind,
        "output_shape": shape,
        "channels": channels,
        "parent": parent,
        "depth": name.count("."),
    }


# The shape of efficientnet's tree: stem, a 'blocks' container of blocks of sub-blocks, head.
LAYERS = [
    L("conv_stem", channels=32),
    L("bn1", "norm", 32),
    L("bn1.drop", "other", 32),
    L("bn1.act", "activation", 32),
    L("blocks", "block", 24),
    L("blocks.0", "block", 16),
    L("blocks.0.0", "block", 16),
    L("blocks.0.0.conv_dw", "conv", 32),
    L("blocks.0.0.conv_pw", "conv", 16),
    L("blocks.0.0.drop_path", "other", None, shape=None),
    L("blocks.1", "block", 24),
    L("blocks.1.0", "block", 24),
    L("blocks.1.0.conv_pw", "conv", 96),
    L("blocks.1.0.bn1", "norm", 96),
    L("blocks.1.0.conv_pwl", "conv", 24),
    L("classifier", "linear", 10, shape=[10]),
]


def test_state_round_trips_through_the_query_string():
    state = ExploreState(
        model="digits_cnn", image="sample:digit3", layer="features.3", filter=7, untrained=True
    )
    query = state.query()
    assert query == "?model=digits_cnn&image=sample:digit3&layer=features.3&filter=7&untrained=1"
    from urllib.parse import parse_qsl

    assert ExploreState.from_query(dict(parse_qsl(query[1:]))) == state


def test_state_from_a_bad_link_is_lenient():
    state = ExploreState.from_query({"model": " ", "filter": "-3", "untrained": "no", "layer": "x"})
    assert state == ExploreState(layer="x")
    assert ExploreState().query() == ""


def test_layers_are_grouped_by_block_in_model_order_without_identity_layers():
    groups = group_layers(LAYERS)
    assert [g.name for g in groups] == ["conv_stem", "bn1", "blocks.0", "blocks.1", "classifier"]
    names = {g.name: [x["name"] for x in g.layers] for g in groups}
    assert names["bn1"] == ["bn1", "bn1.act"]  # bn1.drop (Identity) is hidden
    assert names["blocks.1"] == [
        "blocks.1",
        "blocks.1.0",
        "blocks.1.0.conv_pw",
        "blocks.1.0.bn1",
        "blocks.1.0.conv_pwl",
    ]
    assert "blocks.0.0.drop_path" not in names["blocks.0"]
    assert groups[2].shape == [16, 4, 4]


def test_a_container_of_plain_layers_stays_one_group():
    layers = [
        L("features", "block", 8),
        L("features.0", "conv"),
        L("features.1", "activation"),
        L("fc", "linear", 10, [10]),
    ]
    assert [(g.name, len(g.layers)) for g in group_layers(layers)] == [("features", 3), ("fc", 1)]


@pytest.mark.parametrize(
    ("layer", "source"),
    [
        ("conv_stem", "conv_stem"),  # its own weights
        ("bn1.act", "conv_stem"),  # the conv before it with the same channels
        ("blocks.1", "blocks.1.0.conv_pwl"),  # a block: the last conv inside with its channel count
        ("blocks.1.0.bn1", "blocks.1.0.conv_pw"),
        ("classifier", "classifier"),
        ("nope", None),
    ],
)
def test_weights_source_layer(layer, source):
    assert weights_source_layer(LAYERS, layer) == source


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


def test_neighbours_follow_display_order_and_wrap():
    order = [3, 1, 0, 2]
    assert neighbour(order, 1, 1) == 0 and neighbour(order, 1, -1) == 3
    assert neighbour(order, 2, 1) == 3 and neighbour(order, 3, -1) == 2
    assert neighbour(order, 9, 1) == 3  # unknown: back to the first


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


def test_gallery_samples_are_real_images():
    ids = [s.id for s in gallery()]
    assert "sample:chelsea" in ids and "sample:digit3" in ids
    cat = Image.open(io.BytesIO(sample_png("chelsea")))
    assert cat.size == (451, 300) and cat.mode == "RGB"
    digit = np.asarray(Image.open(io.BytesIO(sample_png("digit3"))))
    assert digit.shape == (8, 8)
    assert digit.max() > 200 and np.median(digit) < 64  # bright ink on a dark background


def test_uploads_are_kept_by_sha256_and_unknown_ids_say_why(tmp_path):
    image_id = store_upload(b"some bytes", tmp_path)
    assert image_id == "upload:" + hashlib.sha256(b"some bytes").hexdigest()
    assert image_bytes(image_id, tmp_path) == b"some bytes"
    with pytest.raises(UnknownImageError, match="upload it again"):
        image_bytes("upload:" + "0" * 64, tmp_path)
    with pytest.raises(UnknownImageError, match="not an image id"):
        image_bytes("../../etc/passwd", tmp_path)
    with pytest.raises(UnknownImageError, match="no bundled sample"):
        image_bytes("sample:nothing", tmp_path)
