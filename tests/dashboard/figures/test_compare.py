"""The compare page's CKA map: rows are A's layers, columns B's, each row's best match ringed."""

from __future__ import annotations

from dashboard.figures.compare import cross_cka_figure

RESULT = {
    "a": {"label": "efficientnet_lite0:weights"},
    "b": {"label": "efficientnet_lite1:weights"},
    "dataset": "lfw_subset",
    "num_images": 48,
    "layers_a": ["conv_stem", "blocks.0"],
    "layers_b": ["conv_stem", "blocks.0", "blocks.1"],
    "cka": [[0.9, 0.5, 0.2], [0.4, 0.7, 0.8]],
    "best_match": [
        {"layer_a": "conv_stem", "layer_b": "conv_stem", "cka": 0.9},
        {"layer_a": "blocks.0", "layer_b": "blocks.1", "cka": 0.8},
    ],
}


def test_the_map_has_a_layers_as_rows_b_layers_as_columns_and_rings_the_best_matches():
    fig = cross_cka_figure(RESULT)
    heat, rings = fig.data
    assert list(heat.y) == RESULT["layers_a"] and list(heat.x) == RESULT["layers_b"]
    assert (heat.zmin, heat.zmax) == (0, 1) and [list(r) for r in heat.z] == RESULT["cka"]
    assert list(zip(rings.y, rings.x, strict=True)) == [("conv_stem", "conv_stem"), ("blocks.0", "blocks.1")]
    assert "48 images of lfw_subset" in fig.layout.title.text
    assert fig.layout.xaxis.title.text == "B: efficientnet_lite1"
    assert fig.layout.yaxis.autorange == "reversed"  # A's first layer on top
