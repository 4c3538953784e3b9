"""Deconvnet, guided backprop, plain gradient and Grad-CAM for any PyTorch CNN.

- :mod:`.rectifiers` - the rewritten backward of every rectifier (modules and functional calls), the
  one mechanism behind deconvnet and guided backprop (rules in docs/ACTIVATION_RULES.md);
- :mod:`.backprop` - targets (filter, neuron, class) and their input-space maps, top-k filters;
- :mod:`.gradcam` - Grad-CAM at a layer.

:func:`attribute` is the one entry point for every method.
"""

from __future__ import annotations

import torch
from torch import nn

from server.engine.attribution.backprop import (
    METHODS,
    Attribution,
    Method,
    Target,
    backprop_map,
    backprop_top_filters,
    filter_maps,
    top_filters,
)
from server.engine.attribution.gradcam import gradcam
from server.engine.attribution.rectifiers import (
    REWRITE_MODES,
    Mode,
    Rectifier,
    module_rectifier,
    rectifier_modules,
    rewritten_rectifiers,
)
from server.errors import InvalidInputError

__all__ = [
    "METHODS",
    "REWRITE_MODES",
    "Attribution",
    "Method",
    "Mode",
    "Rectifier",
    "Target",
    "attribute",
    "backprop_map",
    "backprop_top_filters",
    "filter_maps",
    "gradcam",
    "module_rectifier",
    "rectifier_modules",
    "rewritten_rectifiers",
    "top_filters",
]


def attribute(model: nn.Module, x: torch.Tensor, target: Target, method: str) -> Attribution:
    """One entry point for every method; Grad-CAM explains ``target.class_index`` at ``target.layer``."""
    if method == "gradcam":
        if target.layer is None:
            raise InvalidInputError("Grad-CAM needs a layer.")
        return gradcam(model, x, target.layer, target.class_index)
    return backprop_map(model, x, target, method)
