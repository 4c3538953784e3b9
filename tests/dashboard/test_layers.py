"""Layer grouping by block and the conv layer behind a layer, on a hand-made efficientnet-shaped tree."""

from __future__ import annotations

import pytest

from dashboard.layers import group_layers, weights_source_layer


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
