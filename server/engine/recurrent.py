"""Recurrent networks step by step: per-step hidden states, gates, cell state and prediction, gate statistics, gradient flow.

Works on any one-layer ``nn.RNN`` (tanh), ``nn.LSTM`` or ``nn.GRU`` (batch_first) with a readout on its
hidden state. The hidden states come from the module's own fused forward; gates and the cell state
are recomputed from its weights in PyTorch's gate order (LSTM i, f, g, o; GRU r, z, n), batched over
time, so a trace costs about one forward (checked against ``nn.LSTM`` in the tests). Gradient flow
unrolls the cell with autograd and reads dLoss/dh_t for every t (Bengio et al. 1994; Pascanu et al.
2013), optionally clipping each step's backpropagated gradient to a norm.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

GATE_NAMES = {"rnn": (), "lstm": ("input", "forget", "cell", "output"), "gru": ("reset", "update", "new")}
# Gates whose values lie in (0, 1) (sigmoids): the ones saturation statistics are about.
SIGMOID_GATES = {"rnn": (), "lstm": ("input", "forget", "output"), "gru": ("reset", "update")}
LEFT_SATURATED = 0.1
RIGHT_SATURATED = 0.9


def cell_kind(rnn: nn.RNNBase) -> str:
    """'rnn', 'lstm' or 'gru' for a one-layer, unidirectional, batch_first recurrent module; ValueError otherwise."""
    kind = {"RNN_TANH": "rnn", "LSTM": "lstm", "GRU": "gru"}.get(rnn.mode)
    if kind is None:
        raise ValueError(f"unsupported recurrent mode {rnn.mode!r} (tanh RNN, LSTM or GRU)")
    projected = int(getattr(rnn, "proj_size", 0)) > 0
    if rnn.num_layers != 1 or rnn.bidirectional or not rnn.batch_first or projected:
        raise ValueError("only one-layer, unidirectional, batch_first recurrent modules without projections")
    return kind


def _weights(rnn: nn.RNNBase) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    w_ih: torch.Tensor = cast(torch.Tensor, rnn.weight_ih_l0)
    w_hh: torch.Tensor = cast(torch.Tensor, rnn.weight_hh_l0)
    zeros = torch.zeros(w_hh.shape[0], dtype=w_hh.dtype, device=w_hh.device)
    b_ih: torch.Tensor = cast(torch.Tensor, rnn.bias_ih_l0) if rnn.bias else zeros
    b_hh: torch.Tensor = cast(torch.Tensor, rnn.bias_hh_l0) if rnn.bias else zeros
    return w_ih, w_hh, b_ih, b_hh


def cell_step(
    kind: str, params: tuple[torch.Tensor, ...], x_t: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One step of the cell: (x_t (N, I), h (N, H), c) -> (h', c'); the same equations as PyTorch's kernels."""
    w_ih, w_hh, b_ih, b_hh = params
    gi = F.linear(x_t, w_ih, b_ih)
    gh = F.linear(h, w_hh, b_hh)
    if kind == "rnn":
        return torch.tanh(gi + gh), None
    if kind == "lstm":
        i, f, g, o = (gi + gh).chunk(4, dim=1)
        assert c is not None
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c
    ir, iz, in_ = gi.chunk(3, dim=1)
    hr, hz, hn = gh.chunk(3, dim=1)
    r = torch.sigmoid(ir + hr)
    z = torch.sigmoid(iz + hz)
    n = torch.tanh(in_ + r * hn)
    return (1 - z) * n + z * h, None


@dataclass
class SequenceTrace:
    """One or more sequences through the network, every step kept (arrays are (N, T, ...))."""

    kind: str
    inputs: np.ndarray  # (N, T, I)
    hidden: np.ndarray  # (N, T, H): h_1 .. h_T
    gates: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (N, T, H)
    cell: np.ndarray | None = None  # (N, T, H) for LSTM
    probabilities: np.ndarray | None = None  # (N, T, C): the readout applied after every step

    @property
    def steps(self) -> int:
        return self.hidden.shape[1]


@torch.no_grad()
def trace_sequence(rnn: nn.RNNBase, readout: nn.Module | None, seq: torch.Tensor) -> SequenceTrace:
    """Hidden state, gates, cell state and the readout's probabilities after every step of ``seq`` (N, T, I)."""
    kind = cell_kind(rnn)
    out, _ = rnn(seq)  # (N, T, H): the module's own forward
    n, t, hdim = out.shape
    h_prev = torch.cat([out.new_zeros(n, 1, hdim), out[:, :-1]], dim=1)
    w_ih, w_hh, b_ih, b_hh = _weights(rnn)
    gi = F.linear(seq, w_ih, b_ih)  # (N, T, G*H), all steps at once
    gh = F.linear(h_prev, w_hh, b_hh)
    gates: dict[str, np.ndarray] = {}
    cell = None
    if kind == "lstm":
        i, f, g, o = (gi + gh).chunk(4, dim=2)
        i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
        ig = (i * g).numpy()
        fn = f.numpy()
        c = np.empty_like(fn)
        prev = np.zeros((n, hdim), dtype=fn.dtype)
        for step in range(t):  # c_t = f_t * c_{t-1} + i_t * g_t: elementwise, cheap
            prev = fn[:, step] * prev + ig[:, step]
            c[:, step] = prev
        gates = {"input": i.numpy(), "forget": fn, "cell": g.numpy(), "output": o.numpy()}
        cell = c
    elif kind == "gru":
        ir, iz, in_ = gi.chunk(3, dim=2)
        hr, hz, hn = gh.chunk(3, dim=2)
        r = torch.sigmoid(ir + hr)
        z = torch.sigmoid(iz + hz)
        gates = {"reset": r.numpy(), "update": z.numpy(), "new": torch.tanh(in_ + r * hn).numpy()}
    probs = None
    if readout is not None:
        probs = torch.softmax(readout(out), dim=-1).numpy()
    return SequenceTrace(kind, seq.numpy(), out.numpy(), gates, cell, probs)


# --- gate statistics -------------------------------------------------------------------------------------


@dataclass
class GateStats:
    """Per gate and unit: fraction of time steps left-saturated (< 0.1) and right-saturated (> 0.9); forget histogram."""

    kind: str
    left: dict[str, np.ndarray]  # gate -> (H,)
    right: dict[str, np.ndarray]
    histogram_edges: np.ndarray | None = None  # forget (LSTM) or update (GRU) gate values over the data
    histogram_counts: np.ndarray | None = None
    histogram_gate: str = ""
    steps_counted: int = 0


def gate_stats(gates: dict[str, np.ndarray], kind: str, *, bins: int = 20) -> GateStats:
    """Karpathy et al. (2015)'s saturation fractions from gate activations (N, T, H), over all N*T steps."""
    left: dict[str, np.ndarray] = {}
    right: dict[str, np.ndarray] = {}
    steps = 0
    for name in SIGMOID_GATES[kind]:
        v = gates[name].reshape(-1, gates[name].shape[-1])
        steps = v.shape[0]
        left[name] = (v < LEFT_SATURATED).mean(0)
        right[name] = (v > RIGHT_SATURATED).mean(0)
    hist_gate = {"lstm": "forget", "gru": "update"}.get(kind, "")
    edges = counts = None
    if hist_gate:
        counts, edges = np.histogram(gates[hist_gate], bins=bins, range=(0.0, 1.0))
    return GateStats(kind, left, right, edges, counts, hist_gate, steps)


# --- gradient flow -----------------------------------------------------------------------------------------


@dataclass
class GradientFlow:
    """Mean over the batch of ||dLoss/dh_t|| for t = 1..T, and the first-to-last ratio."""

    norms: np.ndarray  # (T,)
    loss: float
    clip: float | None = None

    @property
    def ratio(self) -> float:
        """||dL/dh_1|| / ||dL/dh_T||, both the batch mean of the per-sequence norm (the curve's ends)."""
        return float(self.norms[0] / self.norms[-1])


def gradient_flow(
    rnn: nn.RNNBase,
    readout: Callable[[torch.Tensor], torch.Tensor],
    seq: torch.Tensor,
    targets: torch.Tensor,
    *,
    clip: float | None = None,
) -> GradientFlow:
    """dLoss/dh_t for every step t of ``seq`` (N, T, I), the loss being cross-entropy of readout(h_T) (mean over N).

    The loss is summed over the batch so each sequence's gradient is its own (not divided by N). With
    ``clip``, each sequence's backpropagated gradient is rescaled to norm ``clip`` whenever it exceeds it,
    at every step as it flows back (clipping inside the backward pass); the recorded norms are after clipping.
    """
    kind = cell_kind(rnn)
    params = _weights(rnn)
    n, t, _ = seq.shape
    hdim = rnn.hidden_size
    seq = seq.detach()
    h = seq.new_zeros(n, hdim).requires_grad_(True)  # so the chain needs grad even with frozen weights
    c = seq.new_zeros(n, hdim) if kind == "lstm" else None
    norms = torch.zeros(t, dtype=torch.float64)
    states: list[torch.Tensor] = []
    with torch.enable_grad():
        for step in range(t):
            h, c = cell_step(kind, params, seq[:, step], h, c)
            h.register_hook(_recorder(norms, step, clip))
            states.append(h)
        loss = F.cross_entropy(readout(h), targets, reduction="sum")
        torch.autograd.grad(loss, states)
    return GradientFlow((norms / n).numpy(), float(loss.detach()) / n, clip)


def _recorder(
    norms: torch.Tensor, step: int, clip: float | None
) -> Callable[[torch.Tensor], torch.Tensor | None]:
    def hook(grad: torch.Tensor) -> torch.Tensor | None:
        per_seq = grad.norm(dim=1)
        if clip is not None:
            scale = (clip / per_seq.clamp_min(1e-12)).clamp(max=1.0)
            grad = grad * scale[:, None]
            per_seq = per_seq * scale
        norms[step] = per_seq.double().sum()
        return grad if clip is not None else None

    return hook


def exploding_rnn(
    hidden: int, num_classes: int, *, gain: float = 2.0, seed: int = 0
) -> tuple[nn.RNN, nn.Linear]:
    """A tanh RNN initialised in the chaotic regime, where gradients explode backwards in time.

    Recurrent weights are i.i.d. N(0, gain^2 / hidden) (Sompolinsky et al. 1988: gain > 1 is chaotic; the
    Jacobians' product grows exponentially, the exploding-gradient setting of Pascanu et al. 2013), input
    weights N(0, 1), no biases; the readout is a seeded random linear layer. Untrained, on the CPU.
    """
    g = torch.Generator().manual_seed(seed)
    rnn = nn.RNN(1, hidden, batch_first=True, bias=False)
    readout = nn.Linear(hidden, num_classes)
    with torch.no_grad():
        cast(torch.Tensor, rnn.weight_hh_l0).copy_(
            torch.randn(hidden, hidden, generator=g) * gain / hidden**0.5
        )
        cast(torch.Tensor, rnn.weight_ih_l0).copy_(torch.randn(hidden, 1, generator=g))
        readout.weight.copy_(torch.randn(num_classes, hidden, generator=g) / hidden**0.5)
        readout.bias.zero_()
    for p in (*rnn.parameters(), *readout.parameters()):
        p.requires_grad_(False)
    return rnn.eval(), readout.eval()
