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


def test_capture_ignores_and_does_not_disturb_other_threads_forwards():
    import threading

    from server.engine.hooks import forward_until

    main = threading.get_ident()
    inside, release = threading.Event(), threading.Event()

    class Gate(nn.Module):
        """Holds the main thread's forward (hooks on) until the other thread's forward has run."""

        def forward(self, x):
            if threading.get_ident() == main:
                inside.set()
                assert release.wait(10)
            return x

    m = Tiny()
    m.conv = nn.Sequential(Gate(), m.conv)
    results: dict[str, object] = {}

    def other_thread():
        assert inside.wait(10)
        try:
            results["other"] = m(torch.full((1, 1, 2, 2), 5.0))  # a full forward while our hooks are on
        except Exception as exc:
            results["other"] = exc
        release.set()

    for run in ("capture", "forward_until"):
        inside.clear()
        release.clear()
        t = threading.Thread(target=other_thread)
        t.start()
        if run == "capture":
            with capture_activations(m, ["act"]) as acts:
                m(torch.ones(1, 1, 2, 2))
        else:
            acts = forward_until(m, ["act"], torch.ones(1, 1, 2, 2))
        t.join()
        # the other thread's forward completed (not stopped early) and was not recorded as ours
        assert isinstance(results["other"], torch.Tensor), results["other"]
        assert acts["act"][0, 0].eq(1).all(), run
        assert active_hook_count(m) == 0
