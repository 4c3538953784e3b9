"""The recurrent page's pure figures, on hand-made arrays."""

from __future__ import annotations

import numpy as np

from dashboard.figures import recurrent as figures


def _lstm_arrays(units: int = 3, steps: int = 5) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    signed = lambda: rng.uniform(-2, 2, (units, steps))  # noqa: E731
    return {
        "hidden": signed(),
        "gate_input": rng.uniform(0, 1, (units, steps)),
        "gate_forget": rng.uniform(0, 1, (units, steps)),
        "gate_cell": signed(),
        "gate_output": rng.uniform(0, 1, (units, steps)),
        "cell": signed(),
    }


def test_states_are_stacked_on_one_time_axis_hidden_first_cell_state_last():
    arrays = _lstm_arrays()
    inputs = [0.0, 0.25, 0.5, 1.0, 0.0]
    fig = figures.states_figure(arrays, inputs, [42, 43, 34, 0, 7], title="t")
    assert [t.name for t in fig.data] == [
        "input",
        "hidden",
        "gate_input",
        "gate_forget",
        "gate_cell",
        "gate_output",
        "cell",
    ]
    titles = [a.text for a in fig.layout.annotations]
    assert titles == [
        "input pixel",
        "hidden state h",
        "input gate",
        "forget gate",
        "cell candidate g",
        "output gate",
        "cell state c",
    ]
    assert list(fig.data[0].customdata[0][:2]) == ["pixel (5, 2)", "pixel (5, 3)"]
    assert list(fig.data[1].x) == [1, 2, 3, 4, 5]  # steps count from 1
    for trace in fig.data[1:]:
        z = arrays[trace.name]
        assert np.array_equal(np.asarray(trace.z), z)
        if trace.name in ("gate_input", "gate_forget", "gate_output"):
            assert (trace.zmin, trace.zmax, trace.colorscale[0][1]) == (0.0, 1.0, "#440154")  # Viridis
        else:
            assert trace.zmax == -trace.zmin == float(np.abs(z).max())
    # every row shares the x axis of the bottom row; each colour bar sits beside its row
    assert [fig.layout["xaxis" + (str(i) if i > 1 else "")].matches for i in range(1, 7)] == ["x7"] * 6
    ys = [t.colorbar.y for t in fig.data[1:]]
    assert ys == sorted(ys, reverse=True)


def test_a_plain_rnn_has_only_its_hidden_state():
    fig = figures.states_figure({"hidden": np.zeros((4, 6))}, [0.0] * 6)
    assert [t.name for t in fig.data] == ["input", "hidden"]
    assert fig.data[1].zmax == 1.0  # all zeros: a unit scale, not a zero-width one


def test_the_prediction_over_time_marks_the_top_class_and_where_it_settles():
    probs = [[0.6, 0.3, 0.1], [0.2, 0.7, 0.1], [0.1, 0.8, 0.1]]
    fig = figures.prediction_figure(probs, ["a", "b", "c"], ["a", "b", "b"], true_label="b", settled_at=2)
    heat, top = fig.data
    assert np.allclose(np.asarray(heat.z), np.asarray(probs).T) and list(heat.y) == ["a", "b", "c"]
    assert list(top.x) == [1, 2, 3] and list(top.y) == ["a", "b", "b"]
    assert [s.x0 for s in fig.layout.shapes] == [1.5]
    assert "true class b" in fig.layout.title.text


def test_gradient_flow_is_one_log_plot_with_each_models_ratio():
    flow = {
        "images": 4,
        "models": {
            "seq_rnn": {"norms": [1e-4, 1e-2, 1.0], "first_to_last_ratio": 1e-4},
            "seq_lstm": {"norms": [0.5, 0.8, 1.0], "first_to_last_ratio": 0.5},
        },
    }
    fig = figures.gradient_flow_figure(flow)
    assert fig.layout.yaxis.type == "log"
    assert [t.name for t in fig.data] == ["seq_rnn (first/last 0.0001)", "seq_lstm (first/last 0.5)"]
    assert list(fig.data[0].y) == [1e-4, 1e-2, 1.0] and list(fig.data[0].x) == [1, 2, 3]
    assert "4 digits" in fig.layout.title.text


def test_the_exploding_rnn_with_and_without_clipping_and_the_clip_norm():
    out = {
        "scale": 2.0,
        "clip": 1.0,
        "models": {
            "exploding_rnn": {"norms": [1e4, 10.0, 1.0], "clip": None},
            "exploding_rnn_clipped": {"norms": [0.9, 0.95, 1.0], "clip": 1.0},
        },
    }
    fig = figures.exploding_figure(out)
    assert [t.name for t in fig.data] == ["no clipping", "clipped to 1", "clip norm 1"]
    assert list(fig.data[2].x) == [1, 3] and list(fig.data[2].y) == [1.0, 1.0]
    assert fig.layout.yaxis.type == "log"
    assert "gain 2" in fig.layout.title.text


def test_saturation_scatter_and_gate_histogram():
    stats = {
        "model": "m",
        "thresholds": {"left": 0.1, "right": 0.9},
        "gates": {
            "input": {"left_saturated": [0.5, 0.0], "right_saturated": [0.1, 0.9]},
            "forget": {"left_saturated": [0.0, 0.2], "right_saturated": [0.7, 0.0]},
        },
    }
    fig = figures.saturation_figure(stats)
    named = [t for t in fig.data if t.name]
    assert [t.name for t in named] == ["input gate", "forget gate"]
    assert (
        list(named[1].x) == [0.0, 0.2]
        and list(named[1].y) == [0.7, 0.0]
        and list(named[1].customdata) == [0, 1]
    )
    assert "< 0.1" in fig.layout.xaxis.title.text and "> 0.9" in fig.layout.yaxis.title.text
    hist = {
        "gate": "forget",
        "edges": [0.0, 0.5, 1.0],
        "counts": [3, 7],
        "share_below_0_1": 0.1,
        "share_above_0_9": 0.2,
        "share_between": 0.7,
    }
    bars = figures.gate_histogram_figure(hist, "m")
    assert list(bars.data[0].x) == [0.25, 0.75] and list(bars.data[0].y) == [3, 7]
    assert list(bars.data[0].width) == [0.5, 0.5]
    assert sorted(s.x0 for s in bars.layout.shapes) == [0.1, 0.9]
    assert bars.layout.title.text == "m forget gate: 10.0% below 0.1, 20.0% above 0.9, 70.0% in between"


def test_hidden_state_paths_coloured_by_time_or_by_class_with_the_chosen_digit_on_top():
    tracks = [
        {"index": 0, "label": "0", "xy": np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 1.0]])},
        {"index": 1, "label": "1", "xy": np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])},
        {"index": 7, "label": "1", "xy": np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])},
    ]
    by_time = figures.hidden_projection_figure(tracks, color_by="time", selected=7)
    cloud = next(t for t in by_time.data if t.name == "hidden state")
    assert list(cloud.marker.color) == [1, 2, 3] * 3 and [list(c) for c in cloud.customdata[:2]] == [
        [0, 1],
        [0, 2],
    ]
    chosen = next(t for t in by_time.data if t.name == "digit #7 (1)")
    assert list(chosen.x) == [1.0, 2.0, 3.0] and chosen.line.width == 3
    by_class = figures.hidden_projection_figure(tracks, color_by="class")
    classes = [t for t in by_class.data if t.name and t.name.startswith("class")]
    assert [t.name for t in classes] == ["class 0", "class 1"]
    assert list(classes[1].x) == [0.0, 0.0, 0.0, None, 1.0, 2.0, 3.0, None]  # two paths, not joined
    assert classes[0].line.color != classes[1].line.color
    assert not any(t.name and t.name.startswith("digit #") for t in by_class.data)
