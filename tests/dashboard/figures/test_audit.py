"""The audit page's figures on hand-made data."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from dashboard.figures.audit import checkpoint_updates_figure, correlation_heatmap, separability_figure


def test_heatmap_orders_rows_and_columns_by_cluster_and_marks_flags():
    corr = np.array([[1.0, 0.1, 0.9], [0.1, 1.0, 0.2], [0.9, 0.2, 1.0]])
    fig = correlation_heatmap(corr, [0, 2, 1], {2: "redundant"})
    heat = fig.data[0]
    assert list(heat.x) == ["0", "2", "1"]
    np.testing.assert_allclose(np.asarray(heat.z), corr[np.ix_([0, 2, 1], [0, 2, 1])])
    (marks,) = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert marks.name == "redundant" and list(marks.x) == ["2"]


def test_separability_and_checkpoint_figures():
    fig = separability_figure(
        {"separability": [{"layer": "a", "purity": 0.5}, {"layer": "b", "purity": 0.9}]}
    )
    assert list(fig.data[0].y) == [0.5, 0.9]
    result = {
        "comparisons": [
            {
                "a": "m:epoch_01",
                "b": "m:epoch_03",
                "epochs": 2.0,
                "layers": [{"layer": "c", "relative_update": 0.4}],
            }
        ]
    }
    fig = checkpoint_updates_figure(result)
    assert fig.data[0].y[0] == pytest.approx(0.2) and "per epoch" in fig.layout.yaxis.title.text
