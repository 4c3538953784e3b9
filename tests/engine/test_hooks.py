import pytest
import torch
from torch import nn

from server.engine.hooks import active_hook_count, capture_activations, get_module
from server.errors import NotFoundError


class Tiny(nn.Module):
    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 1, bias=False)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(2, 1)
        self.fail = fail
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor([1.0, -1.0]).view(2, 1, 1, 1))

    def forward(self, x):
        y = self.act(self.conv(x))
        if self.fail:
            raise RuntimeError("boom mid-forward")
        return self.fc(y.mean((2, 3)))


def test_capture_returns_pre_inplace_values():
    m = Tiny()
    x = torch.ones(1, 1, 2, 2)
    with capture_activations(m, ["conv", "act"]) as acts:
        m(x)
    # The in-place ReLU must not rewrite the captured conv output.
    assert acts["conv"][0, 1].eq(-1).all()
    assert acts["act"][0, 1].eq(0).all()
    assert active_hook_count(m) == 0


def test_hooks_removed_when_forward_raises():
    m = Tiny(fail=True)
    with pytest.raises(RuntimeError, match="boom"), capture_activations(m, ["conv", "act", "fc"]):
        m(torch.ones(1, 1, 2, 2))
    assert active_hook_count(m) == 0
    assert all(len(mod._forward_hooks) == 0 for mod in m.modules())


def test_unknown_layer_names_closest_matches():
    m = Tiny()
    with pytest.raises(NotFoundError) as e:
        get_module(m, "cnov")
    assert "conv" in e.value.message
    assert active_hook_count(m) == 0


def test_no_hooks_remain_after_failed_forward_on_real_model(lite0):
    bad = torch.zeros(1, 3, 7)  # wrong rank: the forward raises inside the model
    with pytest.raises(RuntimeError), capture_activations(lite0.model, ["conv_stem", "blocks.3"]):
        lite0.model(bad)
    assert active_hook_count(lite0.model) == 0


def test_forward_until_stops_after_the_layer_and_cleans_up():
    from server.engine.hooks import forward_until

    m = Tiny()
    called = []
    handle = m.fc.register_forward_hook(lambda *a: called.append("fc"))
    try:
        acts = forward_until(m, ["act"], torch.ones(1, 1, 2, 2))
    finally:
        handle.remove()
    assert called == []  # the layers after `act` were never computed
    assert acts["act"][0, 0].eq(1).all() and acts["act"][0, 1].eq(0).all()
    assert active_hook_count(m) == 0
