"""Streaming channel statistics against a direct computation."""

from __future__ import annotations

import numpy as np
import torch

from server.engine.audit.stats import ChannelAccumulator


def test_accumulator_matches_a_direct_computation():
    g = torch.Generator().manual_seed(1)
    batches = [
        torch.randn(5, 3, 4, 4, generator=g) * torch.tensor([1.0, 2.0, 0.5]).reshape(1, 3, 1, 1) + 3
        for _ in range(3)
    ]
    acc = ChannelAccumulator(3, positions_per_image=16, saturating=None, level=0.99, seed=0)
    for b in batches:
        acc.update(b)
    st = acc.stats()
    allx = torch.cat(batches).permute(1, 0, 2, 3).reshape(3, -1).double()
    np.testing.assert_allclose(st.std, allx.std(1, unbiased=False).numpy(), rtol=1e-5)
    np.testing.assert_allclose(st.mean, allx.mean(1).numpy(), rtol=1e-6)
    np.testing.assert_allclose(st.correlation, np.corrcoef(allx.numpy()), atol=1e-5)
    np.testing.assert_allclose(st.active_share, (allx > 0).double().mean(1).numpy())
    assert st.pooled.shape == (15, 3)
