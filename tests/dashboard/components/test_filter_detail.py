"""The detail view's prev/next steps follow the grid's display order."""

from __future__ import annotations

from dashboard.components.filter_detail import neighbour


def test_neighbours_follow_display_order_and_wrap():
    order = [3, 1, 0, 2]
    assert neighbour(order, 1, 1) == 0 and neighbour(order, 1, -1) == 3
    assert neighbour(order, 2, 1) == 3 and neighbour(order, 3, -1) == 2
    assert neighbour(order, 9, 1) == 3  # unknown: back to the first
