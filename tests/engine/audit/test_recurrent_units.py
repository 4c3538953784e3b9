"""Recurrent layers in the audit: their hidden units are judged over time steps (issue 15)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from server.engine.audit.response import output_channels, response_points
from server.engine.audit.run import audit_model, out_in_weight
from server.engine.audit.whatif import what_if_zeroing
from server.engine.hooks import active_hook_count

H, T = 4, 6


class TinySeq(nn.Module):
    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.rnn = cell(1, H, batch_first=True)
        self.readout = nn.Linear(H, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.readout(out[:, -1])


def hand_set_rnn() -> TinySeq:
    """Unit 0 saturates (input weight 50 on inputs in [0.5, 1]: tanh = 1), unit 1 is constant 0 (no
    weights, no bias), units 2 and 3 follow the input (weight 1 and -0.5, small enough to stay unsaturated)."""
    m = TinySeq(nn.RNN)
    with torch.no_grad():
        for p in m.parameters():
            p.zero_()
        m.rnn.weight_ih_l0[:, 0] = torch.tensor([50.0, 0.0, 1.0, -0.5])
        m.readout.weight[0, 2] = 1.0
        m.readout.bias[1] = 0.3  # class 0 wins while unit 2 (tanh of an input >= 0.5, so >= 0.46) is there
    return m.eval()


def batches(n: int = 64, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = 0.5 + 0.5 * torch.rand(n, T, 1, generator=g)
    y = torch.zeros(n, dtype=torch.long)
    return [(x[i : i + 16], y[i : i + 16]) for i in range(0, n, 16)]


def test_a_recurrent_layer_is_judged_on_its_hidden_states():
    m = hand_set_rnn()
    points = response_points(m, batches()[0][0][:1])
    assert list(points) == ["rnn", "readout"]
    assert points["rnn"].saturating == "symmetric" and not points["rnn"].rectified
    assert output_channels(m.rnn) == H
    assert out_in_weight(m.rnn).shape == (H, 1 + H)  # one gate: (input + hidden) weights per unit


def test_saturated_and_constant_hidden_units_are_flagged():
    m = hand_set_rnn()
    result = audit_model(m, batches())
    rnn = next(la for la in result.layers if la.name == "rnn")
    assert rnn.type == "RNN" and rnn.channels == H
    flags = {(f.filter, f.kind) for f in result.flags if f.layer == "rnn"}
    assert (0, "saturated") in flags and (1, "low_variance") in flags
    assert not {f for f, _ in flags} & {2, 3}  # the units that follow the input are fine
    assert rnn.saturated_share[0] == pytest.approx(1.0) and rnn.saturated_share[2] == pytest.approx(0.0)
    assert active_hook_count(m) == 0


@pytest.mark.parametrize("cell", [nn.LSTM, nn.GRU])
def test_gated_cells_audit_with_one_unit_per_hidden_unit(cell):
    torch.manual_seed(0)
    m = TinySeq(cell).eval()
    result = audit_model(m, batches())
    rnn = next(la for la in result.layers if la.name == "rnn")
    assert rnn.channels == H and len(rnn.std) == H and rnn.type == cell.__name__
    gates = 4 if cell is nn.LSTM else 3
    assert out_in_weight(m.rnn).shape == (H, gates * (1 + H))


def test_what_if_zeroing_of_hidden_units_reaches_the_readout():
    m = hand_set_rnn()
    x = batches()[0][0][:1]
    kept = what_if_zeroing(m, batches, {"rnn": [0, 1]}, x)  # saturated and constant: unused by the readout
    assert kept.accuracy_before == kept.accuracy_after
    gone = what_if_zeroing(m, batches, {"rnn": [2]}, x)  # the unit behind class 0
    assert (gone.accuracy_before, gone.accuracy_after) == (1.0, 0.0)
    assert active_hook_count(m) == 0
