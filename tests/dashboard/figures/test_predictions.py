"""The top-k bar chart, checked on a hand-made payload."""

from __future__ import annotations

import plotly.graph_objects as go

from dashboard.figures import predictions_figure
from dashboard.figures.predictions import ACCENT, MUTED

PREDS = [
    {"index": 282, "label": "tiger cat", "probability": 0.6},
    {"index": 285, "label": "Egyptian cat", "probability": 0.3},
    {"index": 281, "label": "tabby", "probability": 0.1},
]


def test_predictions_best_class_on_top_and_highlighted():
    fig = predictions_figure(PREDS)
    bar = fig.data[0]
    assert isinstance(bar, go.Bar) and bar.orientation == "h"
    # plotly draws the last category on top: best class last
    assert list(bar.y) == ["tabby", "Egyptian cat", "tiger cat"]
    assert list(bar.x) == [0.1, 0.3, 0.6]
    assert list(bar.marker.color) == [MUTED, MUTED, ACCENT]
    assert list(bar.text) == ["10.0%", "30.0%", "60.0%"]
    assert list(bar.customdata) == [281, 285, 282]
    assert tuple(fig.layout.xaxis.range) == (0, 1)
    assert fig.layout.title.text is None


def test_predictions_of_untrained_weights_say_so():
    fig = predictions_figure(PREDS, untrained=True)
    assert "meaningless" in fig.layout.title.text
