"""A transposed conv stores its weights (in, out, k, k): the audit reads them per output filter."""

import torch
from torch import nn

from server.engine.audit.run import out_in_weight


def test_transposed_conv_weights_are_read_per_output_filter():
    m = nn.ConvTranspose2d(3, 5, 2)
    w = out_in_weight(m)
    assert w.shape == (5, 3, 2, 2)
    assert torch.equal(w[4, 1], m.weight[1, 4])
    conv = nn.Conv2d(3, 5, 2)
    assert out_in_weight(conv) is conv.weight


def test_grouped_transposed_conv_weights_keep_their_groups():
    m = nn.ConvTranspose2d(4, 6, 3, groups=2)  # weight (4, 3, 3, 3): in 0-1 -> out 0-2, in 2-3 -> out 3-5
    w = out_in_weight(m)
    assert w.shape == (6, 2, 3, 3)
    assert torch.equal(w[4, 1], m.weight[3, 1])  # out 4 = group 1's filter 1, its input 1 = in channel 3
    assert torch.equal(w[0, 0], m.weight[0, 0])
