"""The recurrent engine on tiny hand-set cells and on PyTorch's own modules."""

import numpy as np
import pytest
import torch
from torch import nn

from server.engine import recurrent as rec


def _module(kind: str, hidden: int = 5, inputs: int = 2) -> nn.RNNBase:
    torch.manual_seed(0)
    cls = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
    return cls(inputs, hidden, batch_first=True).eval()


@pytest.mark.parametrize("kind", ["rnn", "lstm", "gru"])
def test_trace_and_unroll_match_pytorch_kernels(kind):
    m = _module(kind)
    readout = nn.Linear(5, 3)
    seq = torch.randn(4, 7, 2)
    tr = rec.trace_sequence(m, readout, seq)
    out, state = m(seq)
    np.testing.assert_allclose(tr.hidden, out.detach().numpy(), atol=1e-6)
    h = torch.zeros(4, 5)
    c = torch.zeros(4, 5) if kind == "lstm" else None
    with torch.no_grad():
        for t in range(7):
            h, c = rec.cell_step(kind, rec._weights(m), seq[:, t], h, c)
            np.testing.assert_allclose(h.numpy(), out[:, t].detach().numpy(), atol=1e-5)
    if kind == "lstm":
        np.testing.assert_allclose(tr.cell[:, -1], state[1][0].detach().numpy(), atol=1e-5)
        assert set(tr.gates) == {"input", "forget", "cell", "output"}
    assert tr.probabilities.shape == (4, 7, 3)
    np.testing.assert_allclose(tr.probabilities.sum(-1), 1.0, atol=1e-5)
    final = torch.softmax(readout(out[:, -1]), -1).detach().numpy()
    np.testing.assert_allclose(tr.probabilities[:, -1], final, atol=1e-6)


def test_gate_stats_equal_hand_computed_values():
    """One LSTM unit, no recurrence, gates = sigmoid(w * x): the fractions can be counted by hand."""
    m = nn.LSTM(1, 1, batch_first=True)
    with torch.no_grad():
        m.weight_hh_l0.zero_()
        m.bias_ih_l0.zero_()
        m.bias_hh_l0.zero_()
        m.weight_ih_l0.copy_(torch.tensor([[-1.0], [1.0], [1.0], [0.1]]))  # i, f, g, o
    seq = torch.tensor([[10.0, -10.0, 0.0, 10.0]])[..., None]
    # forget = sigmoid(x): 0.99995, 0.0000454, 0.5, 0.99995 -> left 1/4, right 2/4
    # input = sigmoid(-x): 0.0000454, 0.99995, 0.5, 0.0000454 -> left 2/4, right 1/4
    # output = sigmoid(x / 10): 0.73, 0.27, 0.5, 0.73 -> never saturated
    tr = rec.trace_sequence(m, None, seq)
    st = rec.gate_stats(tr.gates, "lstm", bins=20)
    assert st.left["forget"].tolist() == [0.25] and st.right["forget"].tolist() == [0.5]
    assert st.left["input"].tolist() == [0.5] and st.right["input"].tolist() == [0.25]
    assert st.left["output"].tolist() == [0.0] and st.right["output"].tolist() == [0.0]
    assert st.steps_counted == 4 and st.histogram_gate == "forget"
    counts = st.histogram_counts.tolist()
    assert counts[0] == 1 and counts[10] == 1 and counts[19] == 2 and sum(counts) == 4


def test_gradient_flow_last_step_is_the_readouts_gradient():
    m = _module("lstm", hidden=6, inputs=1)
    readout = nn.Linear(6, 4)
    seq = torch.randn(8, 10, 1)
    y = torch.randint(0, 4, (8,))
    flow = rec.gradient_flow(m, readout, seq, y)
    out, _ = m(seq)
    p = torch.softmax(readout(out[:, -1]), -1)
    expected = ((p - nn.functional.one_hot(y, 4)) @ readout.weight).norm(dim=1).mean()
    assert flow.norms.shape == (10,)
    assert flow.norms[-1] == pytest.approx(float(expected.detach()), rel=1e-5)
    assert flow.ratio == pytest.approx(flow.norms[0] / flow.norms[-1])


def test_exploding_rnn_grows_backwards_and_clipping_bounds_it():
    rnn, readout = rec.exploding_rnn(64, 10, gain=2.0, seed=0)
    g = torch.Generator().manual_seed(1)
    seq = torch.rand(32, 64, 1, generator=g)
    y = torch.randint(0, 10, (32,), generator=g)
    plain = rec.gradient_flow(rnn, readout, seq, y)
    growth = plain.norms[:-1] / plain.norms[1:]  # >1: larger one step further back in time
    assert plain.ratio > 100 and (growth > 1).mean() > 0.9
    clipped = rec.gradient_flow(rnn, readout, seq, y, clip=0.5)
    assert clipped.norms.max() <= 0.5 + 1e-6
    assert clipped.norms[-1] <= min(plain.norms[-1], 0.5) + 1e-6


def test_unsupported_modules_are_refused():
    with pytest.raises(ValueError, match="one-layer"):
        rec.cell_kind(nn.LSTM(1, 2, num_layers=2, batch_first=True))
    with pytest.raises(ValueError, match="one-layer"):
        rec.cell_kind(nn.GRU(1, 2))
