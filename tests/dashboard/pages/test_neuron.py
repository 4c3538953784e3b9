"""The neuron page is registered under its path template, its layout keeps the path's parts, and the
navigation bar leaves it out (it is reached by links)."""

from __future__ import annotations

from dash import dcc

from tests.dashboard.trees import find


def test_neuron_page_has_a_path_template_and_keeps_the_paths_parts():
    import dash

    from dashboard.app import create_app, top_bar

    create_app()
    page = next(p for p in dash.page_registry.values() if p.get("path_template"))
    assert page["path_template"] == "/neuron/<model>/<layer>/<channel>"
    tree = page["layout"](model="digits_cnn", layer="features.3", channel="5", dataset="digits")
    store = next(find(tree, lambda c: getattr(c, "id", None) == "neuron-target"))
    assert store.data == {"model": "digits_cnn", "layer": "features.3", "channel": "5", "dataset": "digits"}
    sections = next(find(tree, lambda c: getattr(c, "id", None) == "neuron-sections"))
    assert sections.hidden is True  # until the path is checked
    for panel_id in (
        "neuron-panel-top",
        "neuron-panel-deepvis",
        "neuron-panel-stats",
        "neuron-panel-weights",
    ):
        assert panel_id in str(tree)
    nav = [c.href for c in find(top_bar(), lambda c: isinstance(c, dcc.Link))]
    assert "/audit" in nav and not any(h.startswith("/neuron") for h in nav)
