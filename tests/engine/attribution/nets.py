"""Tiny hand-set models shared by the attribution tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def function_mode_depth() -> int:
    return torch._C._len_torch_function_stack()


def conv1x1(cin: int, cout: int, weights: list[float], bias: list[float] | None = None) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, 1, bias=bias is not None)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor(weights, dtype=torch.float32).reshape(cout, cin, 1, 1))
        if bias is not None:
            conv.bias.copy_(torch.tensor(bias))
    conv.requires_grad_(False)
    return conv


class TwoPath(nn.Module):
    """y = 2 relu(x) - relu(-x), elementwise: the three rules give three different maps."""

    def __init__(self, act: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = conv1x1(1, 2, [1.0, -1.0])
        self.act = act if act is not None else nn.ReLU()
        self.conv2 = conv1x1(2, 1, [2.0, -1.0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.act(self.conv1(x)))


X = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]])


class PoolNet(nn.Module):
    """relu -> 2x2 max-pool -> linear: the map lands on the pool's switch only."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = conv1x1(1, 2, [1.0, -1.0])
        self.act = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(2, 1)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[2.0, 0.5]]))
            self.fc.bias.zero_()
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.act(self.conv(x))).flatten(1))


class GuidedReLU(torch.autograd.Function):
    """The reference formulation: ReLU whose backward is rewritten by hand."""

    @staticmethod
    def forward(ctx, x, mode):
        ctx.save_for_backward(x)
        ctx.mode = mode
        return x.clamp(min=0)

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if ctx.mode == "deconvnet":
            return g.clamp(min=0), None
        return g.clamp(min=0) * (x > 0).to(g.dtype), None


class ReluNet(nn.Module):
    """A small random ReLU CNN whose activation can be swapped for the reference one."""

    def __init__(self, reference_mode: str | None = None, functional: bool = False) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.c3 = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 5)
        self.relu = nn.ReLU(inplace=True)
        self.reference_mode = reference_mode
        self.functional = functional
        self.requires_grad_(False)

    def act(self, x: torch.Tensor) -> torch.Tensor:
        if self.reference_mode:
            return GuidedReLU.apply(x, self.reference_mode)
        return F.relu(x) if self.functional else self.relu(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(self.act(self.c1(x)), 2)
        x = F.max_pool2d(self.act(self.c2(x)), 2)
        x = self.act(self.c3(x))
        return self.fc(x.flatten(1))
