"""Loading weights without unpickling arbitrary objects: safetensors or ``torch.load(weights_only=True)``."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from torch import nn

from server.errors import InvalidInputError, NotFoundError, UnsafeCheckpointError

STATE_DICT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A checkpoint file -> a flat ``{name: tensor}`` dict, refusing anything that needs code to unpickle."""
    path = Path(path)
    if not path.is_file():
        raise NotFoundError(f"Checkpoint file '{path}' does not exist.")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except Exception as exc:
            raise InvalidInputError(f"'{path.name}' is not a valid safetensors file: {exc}") from None
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(
            f"Refused to load '{path.name}': it needs arbitrary code to unpickle "
            f"(only tensors and plain containers are allowed). Convert it to .safetensors. Details: {exc}"
        ) from None
    except Exception as exc:
        raise InvalidInputError(f"'{path.name}' could not be read as a PyTorch checkpoint: {exc}") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InvalidInputError(f"'{path.name}' does not hold a state dict of tensors.")
    return {k.removeprefix("module."): v for k, v in obj.items()}


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strictly load ``state``; a mismatch names the missing and unexpected keys and bad shapes."""
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    bad_shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or bad_shapes:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {', '.join(missing[:10])}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {', '.join(unexpected[:10])}")
        if bad_shapes:
            parts.append(f"shape mismatches ({len(bad_shapes)}): {'; '.join(bad_shapes[:5])}")
        raise InvalidInputError(f"The {source} does not fit the architecture: " + " | ".join(parts))
    model.load_state_dict(state, strict=True)


def load_torchscript(path: Path) -> nn.Module:
    """A TorchScript archive (no pickled Python code is executed by torch.jit.load)."""
    try:
        return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise InvalidInputError(f"'{Path(path).name}' is not a loadable TorchScript file: {exc}") from None
