import torch
from torch import nn

from server.engine.layers import layer_kind, layer_tree


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.LeakyReLU(0.1))
        self.pool = nn.MaxPool2d(2)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 4 * 4, 5), nn.Tanh())

    def forward(self, x):
        return self.head(self.pool(self.block(x)))


def test_layer_tree_names_kinds_and_shapes():
    tree = {layer.name: layer for layer in layer_tree(Net().eval(), torch.zeros(1, 3, 8, 8))}
    assert list(tree) == [
        "block",
        "block.0",
        "block.1",
        "block.2",
        "pool",
        "head",
        "head.0",
        "head.1",
        "head.2",
    ]
    assert tree["block.0"].kind == "conv" and tree["block.0"].output_shape == (4, 8, 8)
    assert tree["block.1"].kind == "norm"
    assert tree["block.2"].kind == "activation"
    assert tree["pool"].kind == "pool" and tree["pool"].output_shape == (4, 4, 4)
    assert tree["head.1"].kind == "linear" and tree["head.1"].channels == 5
    assert tree["block"].kind == "block" and tree["block.0"].parent == "block"
    assert tree["head.2"].type == "Tanh"


def test_layer_kind_of_timm_bn_act_is_norm(lite0):
    assert layer_kind(dict(lite0.model.named_modules())["bn1"]) == "norm"
