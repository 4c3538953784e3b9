"""The zoo's contract: what every registered model must satisfy, built-in or from the lab's catalogue."""

from __future__ import annotations

import torch

from server.engine.hooks import active_hook_count, capture
from server.engine.layers import weighted_layers


def assert_model_contract(lm) -> None:
    """The declared layers match a real forward's outputs, the logits have the card's classes, the first
    conv has its filters, the default layer exists, and no hook is left behind."""
    layers = [layer for layer in lm.layers() if layer.output_shape is not None]
    convs = [(n, m) for n, m in weighted_layers(lm.model) if m.weight.ndim == 4]
    assert convs, "a CNN has conv layers"
    (first_conv, first), (last_conv, _last) = convs[0], convs[-1]
    # A second, independent forward at batch 2 must produce exactly the declared shapes.
    names = [layer.name for layer in layers]
    with capture(lm.model, names) as acts, torch.inference_mode():
        logits = lm.model(lm.example_input(batch=2))
    for layer in layers:
        assert tuple(acts[layer.name].shape) == (2, *layer.output_shape), layer.name
    if lm.card.kind == "generator":  # a latent in, an image out: the discriminator's input
        assert lm.card.input_size[1:] == (1, 1)
        assert logits.shape[0] == 2 and logits.dim() == 4
    else:
        assert logits.shape == (2, lm.card.num_classes)
    assert acts[first_conv].shape[1] == getattr(first, "out_channels", first.weight.shape[0])
    assert acts[last_conv].abs().sum() > 0
    assert not lm.card.default_layer or lm.card.default_layer in names
    assert len(lm.card.labels) in (0, lm.card.num_classes)
    assert active_hook_count(lm.model) == 0
