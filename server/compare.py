"""Two models, or two checkpoints of one model, side by side: on one image, and layer by layer over a dataset.

:meth:`CompareService.compare` answers for one image: each side's predictions and the activations of a
chosen layer (the explore service's, with its mosaic artifacts), and for two checkpoints of one model the
filters whose weights moved most, with their weights and maps before and after. :meth:`CompareService.cka`
is a job (``compare_cka``): the linear CKA between the layers of the two sides over a dataset, which says
which layer of A corresponds to which of B. Sides are :class:`~server.checkpoints.CheckpointRef`\\ s, loaded
by the checkpoint service. No web imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from server.artifacts import content_key
from server.checkpoints import CheckpointRef, CheckpointService
from server.datasets.store import DatasetStore
from server.engine.audit import (
    best_matches,
    centred_gram,
    cka_between,
    compare_state_dicts,
    most_changed_filters,
)
from server.engine.features import POOLINGS
from server.engine.layers import LayerInfo
from server.errors import InvalidInputError
from server.explore import ExploreService
from server.features_cache import FeatureCache
from server.jobs import JobPlan, Progress, no_progress
from server.zoo.manager import LoadedModel

CKA_TASK = "compare_cka"
MAX_CHANGED_FILTERS = 64
DEFAULT_CKA_IMAGES = 64
MAX_FEATURE_BYTES = 512 * 2**20  # both sides' feature matrices of one CKA job


def side_ref(params: dict[str, Any] | None, what: str) -> CheckpointRef:
    """A side of a comparison from ``{"model", "checkpoint"?, "untrained"?}`` (422 without a model)."""
    params = params or {}
    if not params.get("model"):
        raise InvalidInputError(f"Name the model of side {what}.")
    return CheckpointRef(
        str(params["model"]), params.get("checkpoint") or None, bool(params.get("untrained"))
    )


def _check_two_sides(a: CheckpointRef, b: CheckpointRef) -> None:
    if a == b:
        raise InvalidInputError(
            f"Both sides are {a.label}: compare two models, or two checkpoints of one model."
        )


def _describe(ref: CheckpointRef, lm: LoadedModel) -> dict[str, Any]:
    return {**lm.describe(), "label": ref.label, "checkpoint": ref.checkpoint, "weights": lm.weights_source}


@dataclass(frozen=True)
class CompareRequest:
    """One image through two sides; ``layer_b`` defaults to ``layer_a`` for one model, else to B's default."""

    a: CheckpointRef
    b: CheckpointRef
    layer_a: str | None = None
    layer_b: str | None = None
    top_k: int = 5
    changed: int = 8

    @property
    def checkpoints(self) -> bool:
        """Two snapshots of one architecture (the changed filters are shown), rather than two models."""
        return self.a.model == self.b.model

    def validate(self) -> None:
        _check_two_sides(self.a, self.b)
        if not 1 <= self.top_k <= 100:
            raise InvalidInputError("top_k must be between 1 and 100.")
        if not 1 <= self.changed <= MAX_CHANGED_FILTERS:
            raise InvalidInputError(f"changed must be between 1 and {MAX_CHANGED_FILTERS}.")


@dataclass(frozen=True)
class CkaRequest:
    """Linear CKA between the layers of two sides over an even spread of a dataset's images."""

    a: CheckpointRef
    b: CheckpointRef
    dataset: str
    layers_a: tuple[str, ...] = ()  # empty: the model's stages (see stage_layers)
    layers_b: tuple[str, ...] = ()
    max_images: int = DEFAULT_CKA_IMAGES
    pool: str = "mean"

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> CkaRequest:
        return cls(
            side_ref(params.get("a"), "a"),
            side_ref(params.get("b"), "b"),
            str(params.get("dataset") or ""),
            tuple(params.get("layers_a") or ()),
            tuple(params.get("layers_b") or ()),
            int(params.get("max_images") or DEFAULT_CKA_IMAGES),
            str(params.get("pool") or "mean"),
        )

    def validate(self, limit: int) -> None:
        _check_two_sides(self.a, self.b)
        if not self.dataset:
            raise InvalidInputError("Name the dataset to compare the layers on.")
        if not 2 <= self.max_images <= limit:
            raise InvalidInputError(f"max_images must be between 2 and {limit}; got {self.max_images}.")
        if self.pool not in POOLINGS:
            raise InvalidInputError(f"Unknown pooling '{self.pool}'; use one of {', '.join(POOLINGS)}.")


def _check_feature_size(req: CkaRequest, num_images: int, sides: list[tuple[LoadedModel, list[str]]]) -> None:
    """422 when the features would not fit :data:`MAX_FEATURE_BYTES` (only ``flatten`` gets near it)."""
    per_image = 0
    for lm, layers in sides:
        for name in layers:
            shape = lm.layer(name).output_shape or ()
            per_image += int(np.prod(shape)) if req.pool == "flatten" else int(shape[0] if shape else 0)
    size = 4 * per_image * min(num_images, req.max_images)
    if size > MAX_FEATURE_BYTES:
        raise InvalidInputError(
            f"The features of these layers would take {size / 2**20:,.0f} MiB (at most "
            f"{MAX_FEATURE_BYTES / 2**20:,.0f} MiB): use mean or max pooling, fewer layers or fewer images."
        )


def stage_layers(layers: list[LayerInfo]) -> list[str]:
    """The layers a CKA map shows by default: a network's stages (blocks one level down, such as
    ``blocks.3``) with its top-level conv and linear layers; a network without stages, its conv and
    linear layers."""
    stages = [la for la in layers if la.kind == "block" and la.depth == 1]
    if len(stages) >= 2:
        picked = [la for la in layers if la in stages or (la.depth == 0 and la.kind in ("conv", "linear"))]
    else:
        picked = [la for la in layers if la.kind in ("conv", "linear")]
    return [la.name for la in picked if la.output_shape]


class CompareService:
    """Side-by-side answers for two models or two checkpoints (see the module docstring)."""

    def __init__(
        self,
        explore: ExploreService,
        checkpoints: CheckpointService,
        features: FeatureCache,
        datasets: DatasetStore,
        max_images: int,
    ) -> None:
        self.explore = explore
        self.checkpoints = checkpoints
        self.features = features
        self.datasets = datasets
        self.max_images = max_images

    def _known(self, *refs: CheckpointRef) -> None:
        """404 (naming the closest ids) for a side whose model is not in the zoo: before any other check."""
        for ref in refs:
            self.checkpoints.zoo.spec(ref.model)

    # --- one image --------------------------------------------------------------------------------------

    def load(self, req: CompareRequest) -> tuple[LoadedModel, LoadedModel, str, str]:
        """Both sides loaded and their layers resolved (404 for an unknown model, checkpoint or layer)."""
        self._known(req.a, req.b)
        req.validate()
        la, lb = self.checkpoints.loaded(req.a), self.checkpoints.loaded(req.b)
        layer_a = req.layer_a or la.card.default_layer
        layer_b = req.layer_b or (layer_a if req.checkpoints else lb.card.default_layer)
        la.layer(layer_a)
        lb.layer(layer_b)
        la.require_image_input()
        lb.require_image_input()
        return la, lb, layer_a, layer_b

    def compare(self, req: CompareRequest, img: Image.Image, sha: str) -> dict[str, Any]:
        """Predictions and the chosen layer's activations on each side; for checkpoints, the changed filters."""
        la, lb, layer_a, layer_b = self.load(req)
        sides = []
        for ref, lm, layer in ((req.a, la, layer_a), (req.b, lb, layer_b)):
            predicted = self.explore.predict(lm, img, sha, req.top_k)
            sides.append(
                {
                    **_describe(ref, lm),
                    "layer": layer,
                    "predictions": predicted["predictions"],
                    "input_url": predicted["input_url"],
                    "activations": self.explore.activations(lm, img, sha, layer),
                }
            )
        top1 = [s["predictions"][0]["label"] if s["predictions"] else None for s in sides]
        return {
            "mode": "checkpoints" if req.checkpoints else "models",
            "image_sha256": sha,
            "same_top1": top1[0] == top1[1],
            "sides": sides,
            "changed": self.changed_filters(req, (la, lb), layer_a, img, sha) if req.checkpoints else None,
        }

    def changed_filters(
        self,
        req: CompareRequest,
        models: tuple[LoadedModel, LoadedModel],
        layer: str,
        img: Image.Image,
        sha: str,
    ) -> dict[str, Any]:
        """The ``req.changed`` filters that moved most between the two sides: in ``layer`` when it holds
        weights, else in every conv layer; each with its weights and its map on the image, before and after."""
        states = [{k: v.detach().cpu() for k, v in lm.model.state_dict().items()} for lm in models]
        comparison = compare_state_dicts(states[0], states[1], (req.a.label, req.b.label))
        compared = [u.layer for u in comparison.layers]
        if layer in compared:
            scope = [layer]
        else:
            scope = [name for name in compared if states[0][f"{name}.weight"].dim() == 4] or compared
        top = most_changed_filters(comparison, req.changed, scope)
        maps: dict[tuple[int, str], dict[str, Any]] = {}
        filters = []
        for f in top:
            before_after = []
            for side, lm in enumerate(models):
                if (side, f.layer) not in maps:
                    maps[(side, f.layer)] = self.explore.activations(lm, img, sha, f.layer)
                act = maps[(side, f.layer)]
                stats = act["channels"][f.index]
                weights = self.explore.filter_weights(lm, f.layer, f.index)
                before_after.append(
                    {
                        "shape": weights["shape"],
                        "values": weights["values"],
                        "rgb": weights.get("rgb"),
                        "map_url": act["channel_url_template"].replace("{index}", str(f.index)),
                        "mean": stats["mean"],
                        "max": stats["max"],
                    }
                )
            filters.append(
                {
                    "layer": f.layer,
                    "index": f.index,
                    "change": f.change,
                    "before": before_after[0],
                    "after": before_after[1],
                }
            )
        return {
            "scope": scope,
            "relative_update": comparison.relative_update,
            "epochs": comparison.epochs,
            "layers": [{"layer": u.layer, "relative_update": u.relative_update} for u in comparison.layers],
            "filters": filters,
        }

    # --- CKA over a dataset -----------------------------------------------------------------------------

    def _resolve(self, req: CkaRequest) -> tuple[LoadedModel, LoadedModel, list[str], list[str]]:
        la, lb = self.checkpoints.loaded(req.a), self.checkpoints.loaded(req.b)
        layers = []
        for lm, wanted in ((la, req.layers_a), (lb, req.layers_b)):
            lm.require_image_input()
            names = list(dict.fromkeys(wanted)) or stage_layers(lm.layers())
            for name in names:
                if not lm.layer(name).output_shape:  # unknown: 404 with suggestions
                    raise InvalidInputError(f"Layer '{name}' of '{lm.id}' is not called in its forward pass.")
            layers.append(names)
        return la, lb, layers[0], layers[1]

    def plan_cka(self, params: dict[str, Any]) -> JobPlan:
        """Every check that can be made before the job (4xx), and the job, keyed by what its numbers
        depend on (the same request again is answered from the finished job)."""
        req = CkaRequest.from_params(params)
        self._known(req.a, req.b)
        if req.dataset:
            self.datasets.get(req.dataset)  # 404 with suggestions; a built-in is created on first use
        req.validate(self.max_images)
        info = self.datasets.get(req.dataset)
        if info.num_images < 2:
            raise InvalidInputError(
                f"Dataset '{info.id}' has {info.num_images} image(s); CKA needs at least 2."
            )
        la, lb, layers_a, layers_b = self._resolve(req)
        _check_feature_size(req, info.num_images, [(la, layers_a), (lb, layers_b)])
        key = content_key(
            CKA_TASK, la.cache_key, lb.cache_key, info.content_hash, "|".join(layers_a), "|".join(layers_b),
            str(req.max_images), req.pool,
        )  # fmt: skip
        details = {
            "a": req.a.label,
            "b": req.b.label,
            "dataset": info.id,
            "num_images": min(info.num_images, req.max_images),
        }
        return JobPlan(CKA_TASK, params, key, details)

    def cka(self, params: dict[str, Any], progress: Progress = no_progress) -> dict[str, Any]:
        """The (layers of A) x (layers of B) linear CKA matrix and, for each layer of A, its closest layer of B."""
        req = CkaRequest.from_params(params)
        req.validate(self.max_images)
        la, lb, layers_a, layers_b = self._resolve(req)
        grams: list[list[np.ndarray]] = []
        for side, (lm, layers) in enumerate(((la, layers_a), (lb, layers_b))):

            def report(fraction: float, message: str, side: int = side, lm: LoadedModel = lm) -> None:
                progress(0.45 * (side + fraction), f"{lm.id}: {message}")

            feats, indices = self.features.layer_features(
                lm, layers, req.dataset, req.pool, req.max_images, progress=report
            )
            grams.append([centred_gram(feats[name]) for name in layers])
        progress(0.9, "comparing layers")
        cka = cka_between(grams[0], grams[1])
        best = best_matches(cka)
        return {
            "a": _describe(req.a, la),
            "b": _describe(req.b, lb),
            "dataset": req.dataset,
            "num_images": len(indices),
            "pool": req.pool,
            "layers_a": layers_a,
            "layers_b": layers_b,
            "cka": np.round(cka, 4).tolist(),
            "best_match": [
                {"layer_a": name, "layer_b": layers_b[j], "cka": round(float(cka[i, j]), 4)}
                for i, (name, j) in enumerate(zip(layers_a, best, strict=True))
            ],
        }
