"""Component trees of the audit page on small hand-made reports."""

from __future__ import annotations

from dashboard.components.audit import explore_link, flag_list, layer_table


def test_explore_link_restores_the_filter_view():
    assert (
        explore_link("digits_cnn", "features.2", 4, False) == "/?model=digits_cnn&layer=features.2&filter=4"
    )
    assert explore_link("m", "l", 1, True).endswith("&untrained=1")
    # with the filter's strongest image, Explore opens straight on its maps and DeepVis panel
    assert explore_link("m", "l", 1, False, "upload:ab12") == "/?model=m&image=upload:ab12&layer=l&filter=1"


def test_layer_table_and_flag_list_on_a_small_report():
    report = {
        "layers": [
            {
                "name": "conv",
                "type": "Conv2d",
                "channels": 2,
                "activation": "ReLU",
                "counts": {"dead": 1, "saturated": 0, "low_variance": 0, "redundant": 0},
                "positive_weight_share": 0.5,
                "positive_only": False,
                "clusters": [[0], [1]],
                "separability": 0.7,
            }
        ],
        "flags": [{"layer": "conv", "filter": 1, "kind": "dead", "detail": "positive on 0% of positions"}],
    }
    table = layer_table(report)
    assert "conv" in str(table) and "0.700" in str(table)
    assert flag_list(report).children[0].id == {"type": "audit-flag", "layer": "conv", "filter": 1}
    assert "No flagged filters" in str(flag_list({"flags": []}))
