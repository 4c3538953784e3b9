"""Recurrent views against the real API app (in-process), without a browser: seq_rnn, seq_lstm and seq_gru."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from dashboard import api_client
from dashboard.api_client import ApiClient
from dashboard.views import projections
from dashboard.views import recurrent as view
from tests.dashboard.trees import find, texts
from tests.processes import free_port


@pytest.fixture
def cards(api):
    return view.load_models(None)[2]


def _alert(component) -> str:
    alert = next(find(component, lambda c: getattr(c, "role", None) == "alert"))
    return texts(alert)


def test_the_picker_lists_the_recurrent_models_with_their_held_out_accuracy(api):
    options, value, cards, table, error = view.load_models(None)
    assert [o["value"] for o in options] == ["seq_rnn", "seq_lstm", "seq_gru"] and value == "seq_lstm"
    assert error is None
    for model in ("seq_rnn", "seq_lstm", "seq_gru"):
        accuracy = api.model_card(model)["metrics"]["held_out_accuracy"]
        assert cards[model]["accuracy"] == accuracy
        assert f"{accuracy:.1%}" in texts(table) and f"{accuracy:.1%}" in next(
            o["label"] for o in options if o["value"] == model
        )
    gap = 100 * (cards["seq_lstm"]["accuracy"] - cards["seq_rnn"]["accuracy"])
    assert f"{gap:+.1f} points" in texts(table)
    assert cards["seq_gru"]["gates"] == ["reset", "update", "new"] and cards["seq_rnn"]["gates"] == []
    # a link's model is kept; a model that is not recurrent gets a note and the default
    assert view.load_models("seq_gru")[1] == "seq_gru"
    _, value, _, _, note = view.load_models("digits_cnn")
    assert value == "seq_lstm" and "'digits_cnn' is not a recurrent model" in texts(note)


def test_a_digit_step_by_step_on_the_lstm(api, cards):
    image, states, prediction, caption, error = view.sequence("seq_lstm", 3, cards["seq_lstm"]["labels"])
    assert error is None
    assert Image.open(io.BytesIO(base64.b64decode(image.src.split(",", 1)[1]))).size == (64, 64)
    trace = api.sequence("seq_lstm", dataset="digits", index=3)
    names = [t.name for t in states.data]
    assert names == ["input", "hidden", "gate_input", "gate_forget", "gate_cell", "gate_output", "cell"]
    hidden = api.artifact_array(trace["arrays"]["hidden"]["npy_url"])
    assert hidden.shape == (64, 64) and np.array_equal(np.asarray(states.data[1].z), hidden)
    assert list(states.data[0].z[0]) == trace["inputs"]
    # gates on 0..1, the signed states symmetric around 0
    forget = states.data[3]
    assert (forget.zmin, forget.zmax) == (0.0, 1.0)
    assert states.data[6].zmin == -states.data[6].zmax == -float(np.abs(states.data[6].z).max())
    probs = np.asarray(prediction.data[0].z)
    assert probs.shape == (10, 64) and np.allclose(probs.T, trace["per_step"]["probabilities"])
    assert list(prediction.data[1].y) == trace["per_step"]["predicted"]
    said = trace["prediction"]
    assert f"true class {trace['label']}" in texts(caption) and f"says {said['label']}" in texts(caption)
    assert f"settles at step {said['settled_at_step']}" in texts(caption)


def test_each_cell_shows_its_own_states_and_another_digit_other_ones(api, cards):
    rnn = view.sequence("seq_rnn", 3)[1]
    assert [t.name for t in rnn.data] == ["input", "hidden"]
    gru = view.sequence("seq_gru", 3)[1]
    assert [t.name for t in gru.data] == ["input", "hidden", "gate_reset", "gate_update", "gate_new"]
    lstm_3 = np.asarray(view.sequence("seq_lstm", 3)[1].data[1].z)
    lstm_4 = np.asarray(view.sequence("seq_lstm", 4)[1].data[1].z)
    assert not np.allclose(lstm_3, lstm_4)


@pytest.mark.parametrize(
    ("model", "digit", "expected"),
    [
        ("seq_lstm", 5000, "Index 5000 is out of range: dataset 'digits' has 1797 images (0..1796)"),
        ("seq_lstm", -1, "Index -1 is out of range"),
        ("seq_lstm", 2.5, "a whole number"),
        ("seq_lstm", None, "a whole number"),
        ("digits_cnn", 3, "this needs a recurrent model (seq_rnn, seq_lstm, seq_gru)"),
    ],
)
def test_bad_input_is_a_readable_message(api, model, digit, expected):
    image, states, _, caption, error = view.sequence(model, digit)
    assert image is None and caption is None
    assert expected in _alert(error)
    assert states.layout.annotations[0].text == "no digit"


def test_gate_statistics_of_the_lstm_and_a_note_for_the_plain_rnn(api, cards):
    saturation, histogram, note = view.gates("seq_lstm", cards)
    stats = api.gate_stats("seq_lstm", "digits")
    points = {t.name: t for t in saturation.data if t.name}
    assert set(points) == {"input gate", "forget gate", "output gate"}
    assert list(points["forget gate"].x) == stats["gates"]["forget"]["left_saturated"]
    assert list(points["forget gate"].y) == stats["gates"]["forget"]["right_saturated"]
    hist = stats["histogram"]
    assert list(histogram.data[0].y) == hist["counts"]
    assert f"{hist['share_between']:.1%} in between" in histogram.layout.title.text
    assert "Does the forget gate only use 1 or 0?" in texts(note) and f"{hist['share_between']:.1%}" in texts(
        note
    )
    gru_hist = view.gates("seq_gru", cards)[1]
    assert gru_hist.layout.title.text.startswith("seq_gru update gate")
    saturation, histogram, note = view.gates("seq_rnn", cards)
    assert "seq_rnn is a plain RNN: it has no gates. Pick seq_lstm or seq_gru." in texts(note)
    assert saturation.layout.annotations[0].text == "no gates"


def test_gradient_flow_of_the_three_models_and_the_exploding_rnn(api, cards):
    options = view.flow_snapshots(cards)
    assert options[0] == {"label": "trained models", "value": view.TRAINED}
    assert [o["value"] for o in options[1:]] == ["epoch_01", "epoch_05", "epoch_20", "epoch_40", "epoch_80"]
    assert options[2]["label"] == "after epoch 5"
    flow, error = view.gradient_flow(cards)
    assert error is None and flow.layout.yaxis.type == "log"
    assert flow.layout.title.text.startswith("Gradient flow of the trained models")
    curves = api.gradient_flow(["seq_rnn", "seq_lstm", "seq_gru"])["models"]
    assert [t.name.split()[0] for t in flow.data] == ["seq_rnn", "seq_lstm", "seq_gru"]
    for t in flow.data:
        assert list(t.y) == curves[t.name.split()[0]]["norms"]
    early, error = view.gradient_flow(cards, "epoch_05")
    assert error is None and "at training snapshot epoch_05" in early.layout.title.text
    curves = api.gradient_flow(["seq_rnn", "seq_lstm", "seq_gru"], snapshot="epoch_05")["models"]
    assert [list(t.y) for t in early.data] == [c["norms"] for c in curves.values()]
    ratio = {t.name.split()[0]: t.y[0] / t.y[-1] for t in early.data}
    assert ratio["seq_lstm"] >= 10 * ratio["seq_rnn"]  # the lecture's point, on the plotted curves
    _, error = view.gradient_flow(cards, "epoch_99")
    assert "epoch_99" in _alert(error)
    fig, error = view.exploding(0.5)
    assert error is None and fig.layout.yaxis.type == "log"
    plain, clipped, level = fig.data
    assert plain.name == "no clipping" and clipped.name == "clipped to 0.5"
    assert plain.y[0] > 100 * plain.y[-1]  # grows as it goes back in time
    assert max(clipped.y) <= 0.5 + 1e-6
    assert set(level.y) == {0.5}
    fig, error = view.exploding(0)
    assert "must be a positive number" in _alert(error)


def test_hidden_states_of_a_few_digits_projected(api):
    fig, error = view.projection("seq_lstm", 500, "time")
    assert error is None
    cloud = next(t for t in fig.data if t.name == "hidden state")
    assert len(cloud.x) == 11 * 64 and list(cloud.marker.color[:3]) == [1, 2, 3]
    label = api.sequence("seq_lstm", dataset="digits", index=500)["label"]
    assert any(t.name == f"digit #500 ({label})" for t in fig.data)
    by_class, _ = view.projection("seq_lstm", 500, "class")
    assert {t.name for t in by_class.data if t.name and t.name.startswith("class")} == {
        f"class {d}" for d in range(10)
    }
    # an index out of range: the first digits are still projected (the digit panel shows the message)
    fig, error = view.projection("seq_lstm", 5000, "time")
    assert error is None and len(next(t for t in fig.data if t.name == "hidden state").x) == 10 * 64


def test_principal_components_of_points_on_a_line():
    t = np.arange(5, dtype=float)[:, None]
    x = np.hstack([3 * t, 4 * t, np.zeros_like(t)])  # along (3, 4, 0): length 5 per step
    coords, share = view.principal_components(x)
    assert share[0] == pytest.approx(1.0) and share[1] == pytest.approx(0.0, abs=1e-12)
    assert np.allclose(np.abs(np.diff(coords[:, 0])), 5.0) and np.allclose(coords[:, 1], 0.0)


def test_every_view_says_when_the_api_is_down(api, cards):
    api_client.set_client(ApiClient(f"http://127.0.0.1:{free_port()}", timeout=2))
    assert "Cannot reach the ConvLens API" in _alert(view.load_models(None)[4])
    assert "Cannot reach the ConvLens API" in _alert(view.sequence("seq_lstm", 3)[4])
    assert "Cannot reach the ConvLens API" in _alert(view.gates("seq_lstm", cards)[2])
    assert "Cannot reach the ConvLens API" in _alert(view.gradient_flow(cards)[1])
    assert "Cannot reach the ConvLens API" in _alert(view.exploding(1)[1])
    assert "Cannot reach the ConvLens API" in _alert(view.projection("seq_lstm", 3, "time")[1])


def test_links_into_the_other_pages(api):
    linked = {c.id: c.href for c in find(view.links("seq_gru"), lambda c: getattr(c, "href", None))}
    assert linked == {
        "rec-link-explore": "/?model=seq_gru",
        "rec-link-projections": "/projections?dataset=digits&model=seq_gru&layer=final",
        "rec-link-audit": "/audit?model=seq_gru&dataset=digits",
    }
    assert view.links(None) is None
    # the projections page takes the linked layer: the final hidden state
    assert projections.layer_options("seq_gru", "final")[1] == "final"
