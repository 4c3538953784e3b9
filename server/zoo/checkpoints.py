"""Loading weights without unpickling arbitrary objects: safetensors or ``torch.load(weights_only=True)``.

Checkpoints load as ``torch.nn.Module.load_state_dict(strict=True)`` would take them, plus the wrappers
training code leaves around the weights (issue 18):

- nesting: ``{"state_dict": ...}`` (PyTorch Lightning, timm), ``{"model_state_dict": ...}``, ``{"model": ...}``;
  with EMA weights next to the raw ones (``state_dict_ema``, ``model_ema``, ``ema_state_dict``, ``ema``)
  ``weights="ema"`` (the default, ``CONVLENS_CHECKPOINT_WEIGHTS``) takes the EMA ones, ``"raw"`` the others;
- prefixes: DataParallel's ``module.``, torch.compile's ``_orig_mod.`` (also on a compiled submodule) and
  Lightning's ``model.`` are dropped where that makes a key one of the model's own;
- BatchNorm's ``num_batches_tracked`` may be missing: torch fills the counter in, so do we.

Anything else that does not fit is an error naming the missing and unexpected keys.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from server.errors import InvalidInputError, NotFoundError, UnsafeCheckpointError

STATE_DICT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")
NESTED_KEYS = ("state_dict", "model_state_dict", "model")
EMA_KEYS = ("state_dict_ema", "model_ema", "ema_state_dict", "ema")
WRAPPER_PREFIXES = ("module.", "_orig_mod.", "model.")  # DataParallel, torch.compile, Lightning
CheckpointWeights = Literal["ema", "raw"]


def read_state_dict(path: Path, weights: CheckpointWeights = "ema") -> dict[str, torch.Tensor]:
    """A checkpoint file -> a flat ``{name: tensor}`` dict, refusing anything that needs code to unpickle.

    ``weights`` chooses between the raw and the EMA weights of a checkpoint that holds both."""
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
    state = unwrap_checkpoint(obj, weights)
    if state is None:
        raise InvalidInputError(
            f"'{path.name}' does not hold a state dict of tensors (looked at the file itself and at its "
            f"{', '.join(repr(k) for k in (*NESTED_KEYS, *EMA_KEYS))} entries)."
        )
    return strip_common_prefixes(state)


def _tensor_dict(obj: Any) -> dict[str, torch.Tensor] | None:
    if isinstance(obj, Mapping) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {str(k): v for k, v in obj.items()}
    return None


def unwrap_checkpoint(obj: Any, weights: CheckpointWeights = "ema") -> dict[str, torch.Tensor] | None:
    """The state dict inside what ``torch.load`` returned: the object itself, or a nested entry, EMA first
    when ``weights == "ema"`` and the checkpoint has EMA weights; None when there is none."""
    flat = _tensor_dict(obj)
    if flat is not None or not isinstance(obj, Mapping):
        return flat
    order = (*EMA_KEYS, *NESTED_KEYS) if weights == "ema" else (*NESTED_KEYS, *EMA_KEYS)
    for key in order:
        found = unwrap_checkpoint(obj.get(key), weights) if key in obj else None
        if found is not None:
            return found
    return None


def strip_common_prefixes(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop ``module.`` / ``_orig_mod.`` while every key carries it (a wrapped model's whole state)."""
    changed = True
    while changed and state:
        changed = False
        for prefix in ("module.", "_orig_mod."):
            if all(k.startswith(prefix) for k in state):
                state = {k.removeprefix(prefix): v for k, v in state.items()}
                changed = True
    return state


def _candidates(key: str) -> Iterable[str]:
    """``key`` with wrapper prefixes peeled off one at a time (also a compiled submodule's ``._orig_mod.``)."""
    seen = key
    while True:
        for prefix in WRAPPER_PREFIXES:
            if seen.startswith(prefix):
                seen = seen.removeprefix(prefix)
                yield seen
                break
        else:
            break
    if "._orig_mod." in key:
        inner = key.replace("._orig_mod.", ".")
        yield inner
        yield from _candidates(inner)


def fit_keys(state: dict[str, torch.Tensor], own: Iterable[str]) -> dict[str, torch.Tensor]:
    """``state`` with each key that is not the model's own renamed to the first unwrapped form that is
    (unless that name is taken); keys that fit nowhere stay as they are, for the error to name."""
    own_keys = set(own)
    out: dict[str, torch.Tensor] = {}
    renamed: dict[str, str] = {}
    for key in state:
        if key in own_keys:
            continue
        target = next((c for c in _candidates(key) if c in own_keys and c not in state), None)
        if target is not None and target not in renamed.values():
            renamed[key] = target
    for key, value in state.items():
        out[renamed.get(key, key)] = value
    return out


def load_into(model: nn.Module, state: dict[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Load ``state`` as ``load_state_dict(strict=True)`` would, after :func:`fit_keys`; a missing
    BatchNorm ``num_batches_tracked`` is filled in as torch does; a mismatch names the missing and
    unexpected keys and bad shapes."""
    own = model.state_dict()
    state = fit_keys(state, own)
    for key in own:
        if key not in state and key.rpartition(".")[2] == "num_batches_tracked":
            state[key] = torch.zeros_like(own[key])  # what BatchNorm's own loader puts there
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
    import warnings

    try:
        with (
            warnings.catch_warnings()
        ):  # torch.jit is deprecated for new models; existing files stay supported
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", FutureWarning)
            return torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:
        raise InvalidInputError(f"'{Path(path).name}' is not a loadable TorchScript file: {exc}") from None
