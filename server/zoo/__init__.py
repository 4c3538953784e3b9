"""Model zoo: a registry of models whose preprocessing and labels travel with their weights."""

from server.zoo.registry import ModelCard, ModelSpec, get_spec, list_specs, register_model

__all__ = ["ModelCard", "ModelSpec", "get_spec", "list_specs", "register_model"]
