"""Grad-CAM (Selvaraju et al. 2017): where in the image a layer's evidence for a class lies."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from server.engine.attribution.backprop import Attribution, Target, class_seed, layer_output
from server.engine.hooks import first_tensor
from server.errors import InvalidInputError


def gradcam(model: nn.Module, x: torch.Tensor, layer: str, class_index: int | None = None) -> Attribution:
    """Grad-CAM (Selvaraju et al.): relu(sum_k mean(dy_c/dA_k) A_k) at ``layer``, upsampled to the input."""
    if x.dim() != 4 or x.shape[0] != 1:
        raise InvalidInputError(f"Expected one image as a (1, C, H, W) tensor, got {tuple(x.shape)}.")
    inp = x.detach().clone().requires_grad_(True)  # so that the layer's output is on the graph
    with torch.enable_grad():
        act, logits = layer_output(model, layer, inp, stop=False)
        if act.dim() != 4:
            raise InvalidInputError(
                f"Grad-CAM needs a layer with a spatial (C, H, W) output; '{layer}' gives {tuple(act.shape[1:])}."
            )
        out = first_tensor(logits)
        if out is None:
            raise InvalidInputError("The model returned no tensor.")
        seed, cls, value = class_seed(out, class_index)
        (grad,) = torch.autograd.grad(out.reshape(seed.shape), act, seed, allow_unused=True)
    if grad is None:
        raise InvalidInputError(f"The class score does not depend on layer '{layer}'.")
    weights = grad[0].mean(dim=(1, 2), keepdim=True)
    cam = torch.relu((weights * act[0].detach()).sum(0))
    up = F.interpolate(cam[None, None], size=tuple(x.shape[2:]), mode="bilinear", align_corners=False)[0, 0]
    return Attribution(
        "gradcam",
        up.cpu().numpy().astype(np.float32),
        Target(layer=layer, class_index=cls),
        value,
        None,
        cls,
        cam.cpu().numpy().astype(np.float32),
    )
