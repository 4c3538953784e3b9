"""The filter insights' component tree."""

from __future__ import annotations

from dashboard.components.attributions import filter_insights
from tests.dashboard.trees import find


def test_panel_ids_exist():
    tree = filter_insights()
    ids = {c.id for c in find(tree, lambda c: getattr(c, "id", None))}
    assert {
        "attr-row",
        "attr-position",
        "deepvis-start",
        "deepvis-cancel",
        "deepvis-poll",
        "deepvis-image",
    } <= ids
