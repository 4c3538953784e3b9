"""Activation maximisation (DeepVis): how the image is represented (param), how it is randomly
transformed each step (transforms), what is maximised (objectives), and the loop only (render)."""

from server.engine.optvis.objectives import Objective, channel, channels, class_logit, neuron
from server.engine.optvis.presets import PRESETS, RenderConfig, preset_config
from server.engine.optvis.render import BatchRenderResult, RenderResult, render, render_batch, start_objective

__all__ = [
    "PRESETS",
    "BatchRenderResult",
    "Objective",
    "RenderConfig",
    "RenderResult",
    "channel",
    "channels",
    "class_logit",
    "neuron",
    "preset_config",
    "render",
    "render_batch",
    "start_objective",
]
