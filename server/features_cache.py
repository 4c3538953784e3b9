"""Features of a (model, layer, dataset) triple, cached on disk next to the dataset.

The cache key covers everything the numbers depend on: the model id and a fingerprint of its
weights, the preprocessing, the layer, the pooling, the optional PCA reduction and the dataset's
content hash. Files live under ``DatasetStore.cache_dir(dataset)`` so that deleting a dataset
deletes its features too. Writes go to a temporary file that is renamed into place.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from server.cache_budget import CacheBudget
from server.datasets.store import DatasetInfo, DatasetStore
from server.engine.compiled import Compiler
from server.engine.features import (
    POOLINGS,
    even_spread,
    extract,
    extract_layers,
    image_batches,
    reduce_features,
)
from server.errors import InvalidInputError
from server.zoo.manager import LoadedModel

ProgressFn = Callable[[float, str], None]  # (fraction 0..1, message)


@dataclass(frozen=True)
class DatasetFeatures:
    """Cached features of one dataset at one layer, with labels and the model's predictions."""

    key: str
    features: np.ndarray  # (N, D) float32
    labels: np.ndarray  # (N,) label index per image
    classes: tuple[str, ...]
    predictions: np.ndarray | None  # (N,) top-1 class of the model, when computed
    model_labels: tuple[str, ...]
    from_cache: bool


def weights_fingerprint(loaded: LoadedModel) -> str:
    """A short hash of the model's parameters and buffers (computed once per loaded model)."""
    cached = getattr(loaded.model, "_convlens_weights_fingerprint", None)
    if cached:
        return cached
    h = hashlib.sha256(loaded.id.encode())
    with torch.no_grad():
        for name, t in loaded.model.state_dict().items():
            h.update(name.encode())
            h.update(t.detach().float().contiguous().cpu().numpy().tobytes())
    fp = h.hexdigest()[:20]
    object.__setattr__(loaded.model, "_convlens_weights_fingerprint", fp)
    return fp


def feature_key(
    loaded: LoadedModel,
    layer: str,
    dataset: DatasetInfo,
    pool: str,
    reduce: int | None,
    images: int | None = None,
) -> str:
    """The content key of a feature matrix (``images``: of an even spread of that many images)."""
    parts: dict[str, object] = {
        "model": loaded.id,
        "weights": weights_fingerprint(loaded),
        "prep": repr(loaded.prep),
        "layer": layer,
        "dataset": dataset.content_hash,
        "pool": pool,
        "reduce": reduce,
    }
    if images is not None:  # the whole dataset keeps the keys it always had
        parts["images"] = images
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def _atomic_save(budget: CacheBudget, path: Path, **arrays: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    budget.write(path, write)


class FeatureCache:
    """Get-or-extract features and predictions; files under each dataset's cache folder."""

    def __init__(
        self,
        datasets: DatasetStore,
        batch_size: int = 128,
        memory_bytes: int = 512 * 1024 * 1024,
        budget: CacheBudget | None = None,
        compiler: Compiler | None = None,
    ) -> None:
        self.datasets = datasets
        self.compiler = compiler or Compiler("off")
        self.budget = budget or CacheBudget(datasets.cache_root.parent, max_bytes=2**63)
        self.batch_size = batch_size
        self._memory: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
        self._memory_bytes = memory_bytes  # recent matrices kept in RAM, least recently used dropped first
        self._lock = threading.Lock()

    def path(self, dataset_id: str, key: str) -> Path:
        return self.datasets.cache_dir(dataset_id) / "features" / f"{key}.npz"

    def _load(self, dataset_id: str, key: str) -> np.ndarray | None:
        with self._lock:
            if (dataset_id, key) in self._memory:
                self._memory.move_to_end((dataset_id, key))
                return self._memory[(dataset_id, key)]
        path = self.path(dataset_id, key)
        with self.budget.pin(path):  # not evicted while it is read
            if not path.is_file():
                return None
            self.budget.touch(path)
            with np.load(path, allow_pickle=False) as f:
                arr = f["values"]
        self._remember(dataset_id, key, arr)
        return arr

    def _remember(self, dataset_id: str, key: str, arr: np.ndarray) -> None:
        with self._lock:
            if arr.nbytes > self._memory_bytes:
                return
            self._memory[(dataset_id, key)] = arr
            while sum(a.nbytes for a in self._memory.values()) > self._memory_bytes:
                self._memory.popitem(last=False)

    def put(self, dataset_id: str, key: str, arr: np.ndarray) -> None:
        """Write features under ``key`` (atomically) and keep them in memory."""
        _atomic_save(self.budget, self.path(dataset_id, key), values=arr)
        self._remember(dataset_id, key, arr)

    def cached(
        self, loaded: LoadedModel, layer: str, dataset_id: str, pool: str = "mean", reduce: int | None = None
    ) -> np.ndarray | None:
        """The cached features, or None when they have not been extracted yet (never extracts)."""
        info = self.datasets.get(dataset_id)
        return self._load(dataset_id, feature_key(loaded, layer, info, pool, reduce))

    def features(
        self,
        loaded: LoadedModel,
        layer: str,
        dataset_id: str,
        pool: str = "mean",
        reduce: int | None = None,
        *,
        with_predictions: bool = False,
        progress: ProgressFn | None = None,
    ) -> DatasetFeatures:
        """Features of ``layer`` for every image of the dataset; extracted once, then read from disk."""
        if pool not in POOLINGS:
            raise InvalidInputError(f"Unknown pooling '{pool}'; use one of {', '.join(POOLINGS)}.")
        if reduce is not None and reduce < 1:
            raise InvalidInputError("reduce must be a positive number of PCA components.")
        loaded.layer(layer)  # NotFoundError with suggestions
        info = self.datasets.get(dataset_id)
        labels, classes = self.datasets.labels(dataset_id)
        key = feature_key(loaded, layer, info, pool, reduce)
        values = self._load(dataset_id, key)
        from_cache = values is not None
        predictions = self.predictions(loaded, dataset_id, progress=progress) if with_predictions else None
        if values is None:
            raw_key = feature_key(loaded, layer, info, pool, None)
            raw = self._load(dataset_id, raw_key)
            if raw is None:
                raw = self._extract(loaded, layer, info, pool, progress)
                self.put(dataset_id, raw_key, raw)
            values = raw if reduce is None else reduce_features(raw, reduce)
            if reduce is not None:
                self.put(dataset_id, key, values)
        if progress is not None:
            progress(1.0, "features ready")
        return DatasetFeatures(
            key, values, labels, classes, predictions, tuple(loaded.card.labels), from_cache
        )

    def layer_features(
        self,
        loaded: LoadedModel,
        layers: Sequence[str],
        dataset_id: str,
        pool: str = "mean",
        max_images: int | None = None,
        progress: ProgressFn | None = None,
    ) -> tuple[dict[str, np.ndarray], list[int]]:
        """Features of every one of ``layers`` for an even spread of at most ``max_images`` images of the
        dataset, and the indices of those images. Each layer's matrix is cached like :meth:`features`';
        the layers not cached yet are extracted together, in one pass over the images."""
        if pool not in POOLINGS:
            raise InvalidInputError(f"Unknown pooling '{pool}'; use one of {', '.join(POOLINGS)}.")
        for layer in layers:
            loaded.layer(layer)  # NotFoundError with suggestions
        info = self.datasets.get(dataset_id)
        indices = even_spread(info.num_images, max_images)
        subset = None if len(indices) == info.num_images else len(indices)
        keys = {layer: feature_key(loaded, layer, info, pool, None, subset) for layer in layers}
        out = {layer: self._load(dataset_id, key) for layer, key in keys.items()}
        missing = [layer for layer, values in out.items() if values is None]
        if missing:
            with loaded.lock:
                extracted, _ = extract_layers(
                    loaded.model,
                    missing,
                    image_batches(self.datasets.images_at(dataset_id, indices), loaded.prep, self.batch_size),
                    pool,
                    progress=_scaled(progress, len(indices), f"extracting {len(missing)} layers"),
                    total=len(indices),
                )
            for layer, values in extracted.items():
                self.put(dataset_id, keys[layer], values)
                out[layer] = values
        if progress is not None:
            progress(1.0, "features ready")
        return {layer: out[layer] for layer in layers}, indices  # type: ignore[misc]

    def predictions(
        self, loaded: LoadedModel, dataset_id: str, progress: ProgressFn | None = None
    ) -> np.ndarray:
        """The model's top-1 class for every image (one full forward per dataset, cached)."""
        info = self.datasets.get(dataset_id)
        key = "pred-" + feature_key(loaded, "<output>", info, "flatten", None)
        values = self._load(dataset_id, key)
        if values is None:
            last = loaded.layers()[-1].name if loaded.layers() else ""
            with loaded.lock:
                result = extract(
                    loaded.model,
                    last,
                    image_batches(
                        (img for _, img in self.datasets.iter_images(dataset_id)),
                        loaded.prep,
                        self.batch_size,
                    ),
                    "flatten",
                    with_predictions=True,
                    progress=_scaled(progress, info.num_images, "predicting"),
                    total=info.num_images,
                )
            values = (
                result.predictions if result.predictions is not None else np.zeros(info.num_images, np.int64)
            )
            self.put(dataset_id, key, values)
        return values

    def _extract(
        self, loaded: LoadedModel, layer: str, info: DatasetInfo, pool: str, progress: ProgressFn | None
    ) -> np.ndarray:
        images = (img for _, img in self.datasets.iter_images(info.id))
        with loaded.lock:
            return extract(
                loaded.model,
                layer,
                image_batches(images, loaded.prep, self.batch_size),
                pool,
                progress=_scaled(progress, info.num_images, f"extracting {layer}"),
                total=info.num_images,
                compiled=lambda x: self.compiler.forward(loaded.model, layer, x),
            ).features


def _scaled(progress: ProgressFn | None, total: int, what: str) -> Callable[[int, int | None], None] | None:
    if progress is None:
        return None

    def report(done: int, _total: int | None) -> None:
        progress(done / max(total, 1), f"{what}: {done}/{total} images")

    return report
