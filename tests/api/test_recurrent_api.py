"""Recurrent models through the real ASGI app, on the trained seq_rnn / seq_lstm / seq_gru (issue 15)."""

import numpy as np
import pytest
import torch

from server.zoo.digits import digits_split
from tests.conftest import encode

MODELS = ("seq_rnn", "seq_lstm", "seq_gru")


def test_cards_say_recurrent_with_length_hidden_size_gates_and_held_out_accuracy(client, zoo):
    listed = {m["id"]: m for m in client.get("/api/v1/models").json()}
    split = digits_split(0)
    for model_id in MODELS:
        assert listed[model_id]["kind"] == "recurrent"
        card = client.get(f"/api/v1/models/{model_id}").json()
        assert card["recurrent"]["input_length"] == 64 and card["recurrent"]["hidden_size"] == 64
        acc = card["metrics"]["held_out_accuracy"]
        # the card's number is what the stored weights score on the held-out split
        model = zoo.load(model_id).model
        with torch.inference_mode():
            pred = model(torch.from_numpy(split.x_test)).argmax(1).numpy()
        assert acc == pytest.approx(float((pred == split.y_test).mean()))
    assert client.get("/api/v1/models/seq_lstm").json()["recurrent"]["gates"] == [
        "input",
        "forget",
        "cell",
        "output",
    ]
    assert client.get("/api/v1/models/seq_rnn").json()["recurrent"]["gates"] == []
    assert listed["digits_cnn"]["kind"] == "classifier"


def test_lstm_beats_the_plain_rnn_on_held_out_sequential_digits(client):
    acc = {m: client.get(f"/api/v1/models/{m}").json()["metrics"]["held_out_accuracy"] for m in MODELS}
    assert acc["seq_lstm"] > acc["seq_rnn"], acc


def test_sequence_of_a_dataset_digit_has_every_step(client):
    r = client.post("/api/v1/models/seq_lstm/sequence", json={"dataset": "digits", "index": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["steps"] == 64 and body["label"] == "5" and body["untrained"] is False
    assert set(body["arrays"]) == {"hidden", "gate_input", "gate_forget", "gate_cell", "gate_output", "cell"}
    assert len(body["per_step"]["predicted"]) == 64 and len(body["per_step"]["probabilities"][0]) == 10
    assert body["prediction"]["label"] == body["per_step"]["predicted"][-1]
    hidden = np.load(__import__("io").BytesIO(client.get(body["arrays"]["hidden"]["npy_url"]).content))
    assert hidden.shape == (64, 64) and np.abs(hidden).max() <= 1.0
    png = client.get(body["arrays"]["gate_forget"]["png_url"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    gru = client.post("/api/v1/models/seq_gru/sequence", json={"dataset": "digits", "index": 5}).json()
    assert set(gru["arrays"]) == {"hidden", "gate_reset", "gate_update", "gate_new"}


def test_sequence_of_an_uploaded_digit_equals_the_dataset_path(client):
    from sklearn.datasets import load_digits

    img = (load_digits().images[5] / 16 * 255).round().astype(np.uint8)
    up = client.post("/api/v1/models/seq_rnn/sequence", files={"image": ("d.png", encode(img), "image/png")})
    ds = client.post("/api/v1/models/seq_rnn/sequence", json={"dataset": "digits", "index": 5})
    assert up.status_code == 200, up.text
    np.testing.assert_allclose(up.json()["inputs"], ds.json()["inputs"], atol=1e-6)
    assert up.json()["per_step"]["predicted"] == ds.json()["per_step"]["predicted"]


def test_bad_sequence_input_gets_422_or_415_with_a_reason(client):
    r = client.post("/api/v1/models/seq_lstm/sequence", json={"dataset": "digits", "index": 5000})
    assert r.status_code == 422 and "out of range" in r.json()["detail"] and "1797" in r.json()["detail"]
    r = client.post("/api/v1/models/digits_cnn/sequence", json={"dataset": "digits", "index": 1})
    assert r.status_code == 422 and "recurrent" in r.json()["detail"] and "seq_lstm" in r.json()["detail"]
    r = client.post("/api/v1/models/seq_lstm/sequence", json={"dataset": "digits"})
    assert r.status_code == 422 and "index" in r.json()["detail"]
    r = client.post("/api/v1/models/seq_lstm/sequence", content=b"x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    r = client.post("/api/v1/models/seq_lstm/sequence", json={"dataset": "digitz", "index": 1})
    assert r.status_code == 404 and "digits" in r.json()["detail"]
    r = client.get("/api/v1/models/seq_rnn/gate-stats", params={"dataset": "digits"})
    assert r.status_code == 422 and "no gates" in r.json()["detail"]
    r = client.get("/api/v1/recurrent/gradient-flow", params={"models": "seq_lstm,digits_cnn"})
    assert r.status_code == 422


def test_gate_stats_and_forget_histogram_over_the_digits(client):
    r = client.get("/api/v1/models/seq_lstm/gate-stats", params={"dataset": "digits"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["images"] == 1797 and body["steps_counted"] == 1797 * 64
    assert set(body["gates"]) == {"input", "forget", "output"}
    for g in body["gates"].values():
        left, right = np.array(g["left_saturated"]), np.array(g["right_saturated"])
        assert left.shape == (64,) and ((left + right) <= 1 + 1e-9).all()
    hist = body["histogram"]
    assert hist["gate"] == "forget" and sum(hist["counts"]) == 1797 * 64 * 64
    assert hist["share_below_0_1"] + hist["share_above_0_9"] + hist["share_between"] == pytest.approx(1.0)


@pytest.mark.parametrize("snapshot", ["epoch_01", "epoch_05"])
def test_gradient_flow_lstm_ratio_is_at_least_ten_times_the_rnns_early_in_training(client, snapshot):
    """The lecture's point, on the trained models' own training snapshots: early in training the plain RNN's
    gradient at the first step is a vanishing fraction of the last step's, and the LSTM's is not. (After 80
    epochs Adam with clipping has carried seq_rnn out of that regime: its final curve is not asserted here;
    the README records it.)"""
    r = client.get(
        "/api/v1/recurrent/gradient-flow",
        params={"models": ",".join(MODELS), "dataset": "digits", "snapshot": snapshot},
    )
    assert r.status_code == 200, r.text
    curves = r.json()["models"]
    assert r.json()["images"] == 256 and all(len(c["norms"]) == 64 for c in curves.values())
    rnn, lstm = curves["seq_rnn"]["first_to_last_ratio"], curves["seq_lstm"]["first_to_last_ratio"]
    assert lstm >= 10 * rnn, (lstm, rnn)
    assert rnn < 1e-3  # vanished: a thousandth of the last step's gradient reaches the first


def test_gradient_flow_of_the_trained_models(client):
    r = client.get(
        "/api/v1/recurrent/gradient-flow", params={"models": ",".join(MODELS), "dataset": "digits"}
    )
    assert r.status_code == 200 and r.json()["snapshot"] is None
    for curve in r.json()["models"].values():
        norms = np.array(curve["norms"])
        assert norms.shape == (64,) and (norms > 0).all()
        assert curve["first_to_last_ratio"] == pytest.approx(norms[0] / norms[-1])


def test_gradient_flow_of_a_training_snapshot(client):
    r = client.get("/api/v1/recurrent/gradient-flow", params={"models": "seq_rnn", "snapshot": "epoch_01"})
    assert r.status_code == 200 and r.json()["snapshot"] == "epoch_01"
    r = client.get("/api/v1/recurrent/gradient-flow", params={"models": "seq_rnn", "snapshot": "epoch_99"})
    assert r.status_code == 404 and "epoch_01" in r.json()["detail"]


def test_exploding_variant_grows_without_clipping_and_stays_under_the_clip_with_it(client):
    r = client.get("/api/v1/recurrent/gradient-flow/exploding", params={"dataset": "digits", "clip": 2.0})
    assert r.status_code == 200, r.text
    plain = np.array(r.json()["models"]["exploding_rnn"]["norms"])
    clipped = np.array(r.json()["models"]["exploding_rnn_clipped"]["norms"])
    backwards = plain[::-1]  # from the last step back to the first: the order the gradient flows
    assert backwards[-1] > 100 * backwards[0] and (np.diff(backwards) > 0).mean() > 0.9
    assert clipped.max() <= 2.0 + 1e-9
    assert client.get("/api/v1/recurrent/gradient-flow/exploding", params={"clip": 0}).status_code == 422


def _finished(client, job_id: str, timeout: float = 300.0) -> dict:
    from tests.conftest import wait_for

    return wait_for(
        lambda: (
            (j := client.get(f"/api/v1/jobs/{job_id}").json())["status"]
            in ("succeeded", "failed", "cancelled")
            and j
        ),
        timeout,
    )


def test_projection_takes_the_final_hidden_states(client):
    body = {"model": "seq_gru", "layer": "final", "dataset": "digits", "method": "pca"}
    r = client.post("/api/v1/projections", json=body)
    assert r.status_code == 202, r.text
    job = _finished(client, r.json()["job_id"])
    assert job["status"] == "succeeded", job
    assert len(job["result"]["coords"]) == 1797 and job["result"]["feature_dim"] == 64
    assert job["result"]["purity"]["trustworthiness"] > 0.5


@pytest.mark.parametrize("model_id", ["seq_rnn", "seq_lstm"])
def test_the_audit_judges_the_hidden_units_of_a_trained_recurrent_model(client, model_id):
    """The audit accepts a recurrent model: its recurrent layer's 64 hidden units are judged over the 64
    time steps (saturation at +-1, near-constant, redundancy), next to the readout."""
    from tests.conftest import wait_for

    r = client.post("/api/v1/audits", json={"model": model_id, "dataset": "digits", "max_images": 256})
    assert r.status_code == 202, r.text
    job = f"/api/v1/jobs/{r.json()['job_id']}"
    wait_for(lambda: client.get(job).json()["status"] in ("succeeded", "failed"), timeout=120)
    body = client.get(job).json()
    assert body["status"] == "succeeded", body
    layers = {la["name"]: la for la in body["result"]["layers"]}
    rnn = layers["rnn"]
    assert rnn["type"] == ("RNN" if model_id == "seq_rnn" else "LSTM") and rnn["channels"] == 64
    assert len(rnn["saturated_share"]) == 64 and all(0.0 <= s <= 1.0 for s in rnn["saturated_share"])
    assert "readout" in layers and "rnn" not in body["result"]["skipped_layers"]
