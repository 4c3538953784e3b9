"""The projections page's parameter controls and the epsilon slider's scale."""

from __future__ import annotations

import pytest

from dashboard.components.projection import (
    collect_params,
    epsilon_from_slider,
    param_controls,
    slider_from_epsilon,
)


def test_controls_leave_the_live_sliders_out_for_tsne() -> None:
    specs = [
        {"name": "perplexity", "kind": "float", "default": 30.0},
        {"name": "learning_rate", "kind": "float", "default": None},
        {"name": "metric", "kind": "choice", "default": "euclidean", "choices": ["euclidean", "cosine"]},
    ]
    controls = param_controls("tsne", specs)
    assert len(controls) == 1
    assert collect_params([{"name": "a"}, {"name": "b"}], [3, None]) == {"a": 3}
    assert epsilon_from_slider(slider_from_epsilon(200.0)) == pytest.approx(200.0, rel=1e-3)
