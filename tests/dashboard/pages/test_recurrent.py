"""The recurrent page is registered, listed in the top bar, and a link's model and digit preselect it."""

from __future__ import annotations

from tests.dashboard.trees import find


def _by_id(tree, id_):
    return next(find(tree, lambda c: getattr(c, "id", None) == id_))


def test_recurrent_page_is_registered_in_the_nav_and_takes_a_links_model_and_digit():
    import dash

    from dashboard.app import create_app, top_bar

    create_app()
    page = next(p for p in dash.page_registry.values() if p["path"] == "/recurrent")
    assert page["name"] == "Recurrent"
    assert "/recurrent" in [link.href for link in find(top_bar(), lambda c: getattr(c, "href", None))]
    tree = page["layout"](model="seq_gru", digit="42")
    assert _by_id(tree, "rec-initial").data == {"model": "seq_gru"}
    assert _by_id(tree, "rec-digit").value == 42
    for graph in (
        "rec-states",
        "rec-prediction",
        "rec-flow",
        "rec-exploding",
        "rec-saturation",
        "rec-forget",
    ):
        assert _by_id(tree, graph).figure is not None
    assert _by_id(tree, "rec-projection").figure is not None
    assert _by_id(page["layout"](digit="seven"), "rec-digit").value is None
    assert _by_id(page["layout"](), "rec-digit").value == 0
