"""The compare page is registered in the navigation bar, its layout has every panel and it keeps the mode."""

from __future__ import annotations

from dash import dcc

from tests.dashboard.trees import find


def test_compare_page_is_registered_and_its_layout_has_every_panel():
    import dash

    from dashboard.app import create_app, top_bar

    create_app()
    page = next(p for p in dash.page_registry.values() if p["path"] == "/compare")
    tree = page["layout"](mode="models")
    store = next(find(tree, lambda c: getattr(c, "id", None) == "compare-initial"))
    assert store.data == {"mode": "models"}
    for panel_id in ("panel-compare-controls", "panel-compare-changed", "panel-compare-cka"):
        assert panel_id in str(tree)
    for side in "ab":
        for picker in ("model", "checkpoint", "layer"):
            assert f"compare-{picker}-{side}" in str(tree)
    assert "/compare" in [c.href for c in find(top_bar(), lambda c: isinstance(c, dcc.Link))]
