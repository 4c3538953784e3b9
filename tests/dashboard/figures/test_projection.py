"""The projection scatter: one trace per class, point indices, SVG or WebGL by size."""

from __future__ import annotations

from dashboard.figures.projection import SVG_MAX_POINTS, UIREVISION, projection_figure


def test_figure_has_one_trace_per_class_with_point_indices() -> None:
    coords = [[0, 0], [1, 1], [2, 2], [3, 3]]
    fig = projection_figure(coords, labels=[1, 0, 1, 0], classes=["cat", "dog"])
    assert [t.name for t in fig.data] == ["cat", "dog"]
    assert list(fig.data[0].customdata) == [1, 3] and list(fig.data[1].x) == [0, 2]
    assert fig.layout.uirevision == UIREVISION
    by_pred = projection_figure(
        coords,
        color_by="predicted",
        labels=[0, 0, 0, 0],
        classes=["a"],
        predictions=[2, 2, 5, 2],
        model_labels=["x", "y", "z"],
    )
    assert sorted(t.name for t in by_pred.data) == ["5", "z"]
    by_filter = projection_figure(
        coords, color_by="filter", labels=[0, 1, 0, 1], classes=["a", "b"], values=[0.1, 0.2, 0.3, 0.4]
    )
    assert len(by_filter.data) == 1 and list(by_filter.data[0].marker.color) == [0.1, 0.2, 0.3, 0.4]
    assert fig.data[0].type == "scatter"  # SVG: hoverable DOM points, vector export
    assert projection_figure([[i, i] for i in range(SVG_MAX_POINTS + 1)]).data[0].type == "scattergl"
