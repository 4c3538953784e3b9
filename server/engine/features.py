"""Batched feature extraction: one layer's output for many images, pooled per channel or flattened.

``extract_features(model, layer, batches, pool)`` runs the batches through ``model`` under one
:func:`~server.engine.hooks.capture` of ``layer`` that pools the output inside the hook (so no full
activation is kept or cloned) and, unless the model's outputs are wanted, stops the forward right
after the layer so the rest of the network is not computed. The hook is removed on exit whatever
happens, and it acts only on forwards of the thread that installed it (a concurrent request on the
same model runs untouched).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torch import nn

from server.engine.hooks import capture, first_tensor
from server.engine.imaging import Preprocessing, preprocess
from server.engine.inference import to_model_input
from server.errors import InvalidInputError

Pooling = Literal["mean", "max", "flatten"]
POOLINGS: tuple[str, ...] = ("mean", "max", "flatten")
ProgressFn = Callable[[int, int | None], None]  # (images done, total or None)
# the compiled forward up to the layer for a batch like this one, or None (eager): Compiler.forward's shape
CompiledFor = Callable[[torch.Tensor], Callable[[torch.Tensor], torch.Tensor] | None]


@dataclass(frozen=True)
class FeatureBatch:
    """Features of N images (N, D) and, when asked for, the model's top-1 class per image."""

    features: np.ndarray
    predictions: np.ndarray | None


def pool_activation(output: torch.Tensor, pool: str) -> torch.Tensor:
    """(B, C, *spatial) -> (B, C) by mean or max over positions, or (B, C*prod(spatial)) flattened.

    Outputs without spatial dimensions (linear layers, (B, D)) are returned as they are.
    """
    if pool not in POOLINGS:
        raise InvalidInputError(f"Unknown pooling '{pool}'; use one of {', '.join(POOLINGS)}.")
    if output.dim() <= 2:
        return output.reshape(output.shape[0], -1)
    if pool == "flatten":
        return output.flatten(1)
    spatial = output.flatten(2)
    return spatial.mean(2) if pool == "mean" else spatial.amax(2)


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def extract(
    model: nn.Module,
    layer: str,
    batches: Iterable[torch.Tensor],
    pool: str = "mean",
    *,
    with_predictions: bool = False,
    progress: ProgressFn | None = None,
    total: int | None = None,
    compiled: CompiledFor | None = None,
) -> FeatureBatch:
    """Pooled features of ``layer`` for every batch (and top-1 predictions when ``with_predictions``).

    ``batches`` yields preprocessed (B, C, H, W) tensors; they are moved to the model's device.
    The caller holds the model's lock when the model is shared. ``compiled`` gives, per batch, the
    compiled forward up to ``layer`` when there is one (``server.engine.compiled``); such a batch skips
    the hooks. With ``with_predictions`` every batch runs eager (the layer and the logits in one pass).
    """
    features, predictions = extract_layers(
        model,
        [layer],
        batches,
        pool,
        with_predictions=with_predictions,
        progress=progress,
        total=total,
        compiled=compiled,
    )
    return FeatureBatch(features[layer], predictions)


def extract_layers(
    model: nn.Module,
    layers: Sequence[str],
    batches: Iterable[torch.Tensor],
    pool: str = "mean",
    *,
    with_predictions: bool = False,
    progress: ProgressFn | None = None,
    total: int | None = None,
    compiled: CompiledFor | None = None,
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Pooled (N, D) features of every one of ``layers`` in one pass over the batches, and the top-1
    predictions when ``with_predictions``. The forward stops after the last of the layers unless the
    predictions are wanted. The caller holds the model's lock when the model is shared. ``compiled``
    (see :func:`extract`) is used for one layer without predictions only."""
    if compiled is not None and (len(layers) != 1 or with_predictions):
        compiled = None
    if pool not in POOLINGS:
        raise InvalidInputError(f"Unknown pooling '{pool}'; use one of {', '.join(POOLINGS)}.")
    if not layers:
        raise InvalidInputError("Name at least one layer to extract features from.")
    device = _model_device(model)
    pooled: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    preds: list[torch.Tensor] = []
    done = 0
    with (
        capture(
            model,
            list(layers),
            clone=False,
            stop_after=not with_predictions,
            strict=True,
            reduce=lambda t: pool_activation(t, pool).float().cpu(),
        ) as cap,
        torch.inference_mode(),
    ):
        for batch in batches:
            x = to_model_input(batch, model, device)
            fast = compiled(x) if compiled is not None else None
            if fast is not None:
                pooled[layers[0]].append(pool_activation(fast(x), pool).float().cpu())
                out = None
            else:
                out = cap.run(x)
                for name in layers:
                    pooled[name].append(cap[name])
            if with_predictions and out is not None:
                logits = first_tensor(out)
                if logits is not None:
                    preds.append(logits.reshape(logits.shape[0], -1).argmax(1).cpu())
            done += int(batch.shape[0])
            if progress is not None:
                progress(done, total)
    if done == 0:
        raise InvalidInputError("No images to extract features from.")
    features = {name: torch.cat(parts).numpy() for name, parts in pooled.items()}
    predictions = torch.cat(preds).numpy() if with_predictions and preds else None
    return features, predictions


def even_spread(n: int, count: int | None) -> list[int]:
    """Indices of ``count`` items spread evenly over ``n`` (all of them when ``count`` is None or >= n)."""
    if count is None or count >= n:
        return list(range(n))
    return sorted(set(np.linspace(0, n - 1, max(count, 1)).round().astype(int).tolist()))


def extract_features(
    model: nn.Module,
    layer: str,
    batches: Iterable[torch.Tensor],
    pool: str = "mean",
    *,
    progress: ProgressFn | None = None,
    total: int | None = None,
) -> np.ndarray:
    """(N, D) float32 features of ``layer`` for preprocessed image batches, pooled by ``pool``.

    ``pool`` is ``mean`` or ``max`` per channel, or ``flatten``. The forward stops after ``layer``.
    """
    return extract(model, layer, batches, pool, progress=progress, total=total).features


def image_batches(
    images: Iterable[Image.Image], prep: Preprocessing, batch_size: int = 64
) -> Iterator[torch.Tensor]:
    """Preprocess PIL images for a model card and yield (B, C, H, W) CPU tensors."""
    if batch_size < 1:
        raise InvalidInputError("batch_size must be at least 1.")
    buf: list[torch.Tensor] = []
    for img in images:
        buf.append(preprocess(img, prep)[0])
        if len(buf) == batch_size:
            yield torch.cat(buf)
            buf = []
    if buf:
        yield torch.cat(buf)


def reduce_features(features: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """PCA to ``dim`` components (fewer when there are fewer samples or features), float32."""
    from sklearn.decomposition import PCA

    x = np.asarray(features, dtype=np.float32)
    if dim < 1:
        raise InvalidInputError("The reduction dimension must be at least 1.")
    n_comp = min(dim, x.shape[0], x.shape[1])
    if n_comp >= x.shape[1]:
        return x
    return PCA(n_components=n_comp, random_state=seed).fit_transform(x).astype(np.float32)


def check_features(features: np.ndarray, min_points: int = 5) -> np.ndarray:
    """Refuse features no projection can use: too few points, NaN/inf, or every point the same."""
    x = np.asarray(features)
    if x.ndim != 2:
        raise InvalidInputError(f"Features must be a 2-D (points, dimensions) array, got shape {x.shape}.")
    n = x.shape[0]
    if n < min_points:
        raise InvalidInputError(f"A projection needs at least {min_points} points; the dataset has {n}.")
    if x.shape[1] == 0:
        raise InvalidInputError("The features have no dimensions.")
    bad = ~np.isfinite(x)
    if bad.any():
        rows = int(bad.any(axis=1).sum())
        raise InvalidInputError(f"The features contain NaN or infinite values in {rows} of {n} points.")
    if float(np.ptp(x, axis=0).max()) == 0.0:
        raise InvalidInputError(
            "The features are constant: every point has the same values, so there is nothing to project."
        )
    return x
