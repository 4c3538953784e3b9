"""Neuron audits: a model over a dataset -> dead, saturated, near-constant and redundant filters, the
what-if zeroing and CI gates, with JSON and HTML reports and correlation matrices as artifacts.

:class:`AuditService` loads the model from the zoo and the dataset from the DatasetStore, runs
:func:`server.engine.audit.audit_model` (holding the model's lock while hooks are on it), optionally
the what-if, and stores the reports. The API plans audit jobs with it, the ``audit`` task runs them,
and ``convlens audit`` runs one directly. No web imports.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from server.artifacts import ArtifactStore, content_key
from server.audit_report import correlation_npy, render_html, render_json
from server.datasets.archive import UNLABELLED
from server.datasets.store import DatasetInfo, DatasetStore
from server.engine.audit import KINDS, AuditThresholds, parse_gates, what_if_zeroing
from server.engine.audit import audit_model as engine_audit
from server.engine.features import even_spread
from server.engine.imaging import png_bytes, preprocess, signed_map_to_rgb
from server.errors import InvalidInputError
from server.jobs import JobPlan, Progress, no_progress
from server.zoo.manager import LoadedModel, ZooManager

AUDIT_TASK = "audit"
KEEP_PREPROCESSED_BYTES = 256 * 1024 * 1024  # datasets this small are preprocessed once per audit


# --- requests --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRequest:
    model: str
    dataset: str
    untrained: bool = False
    thresholds: dict[str, float] | None = None
    max_images: int | None = None
    batch_size: int = 64
    what_if: bool = False
    what_if_kinds: tuple[str, ...] = ("dead", "redundant")
    fail_on: str | None = None
    positions_per_image: int = 4
    similarity_samples: int = 500

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> AuditRequest:
        known = cls.__dataclass_fields__
        values = {k: v for k, v in params.items() if k in known}
        if "what_if_kinds" in values:
            values["what_if_kinds"] = tuple(values["what_if_kinds"])
        return cls(**values)

    def validate(self) -> AuditThresholds:
        """Every check that needs no model or data; returns the thresholds."""
        thresholds = AuditThresholds.from_mapping(self.thresholds)
        if self.max_images is not None and self.max_images < 2:
            raise InvalidInputError("max_images must be at least 2.")
        if not 1 <= self.batch_size <= 1024:
            raise InvalidInputError("batch_size must be between 1 and 1024.")
        if not 1 <= self.positions_per_image <= 4096:
            raise InvalidInputError("positions_per_image must be between 1 and 4096.")
        if not 2 <= self.similarity_samples <= 20000:
            raise InvalidInputError("similarity_samples must be between 2 and 20000.")
        bad = [k for k in self.what_if_kinds if k not in KINDS]
        if bad or not self.what_if_kinds:
            raise InvalidInputError(
                f"what_if_kinds must be some of {', '.join(KINDS)}; got {list(self.what_if_kinds)}."
            )
        if self.fail_on:
            parse_gates(self.fail_on)
        return thresholds

    def params(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["what_if_kinds"] = list(self.what_if_kinds)
        return d


# --- datasets as batches -----------------------------------------------------------------------------------


@dataclass
class AuditData:
    info: DatasetInfo
    indices: list[int]
    labels: np.ndarray | None  # dataset label index per selected image, None when unlabelled
    batches: Callable[[], Iterator[tuple[torch.Tensor, np.ndarray | None]]]
    total_batches: int


def dataset_is_labelled(info: DatasetInfo) -> bool:
    return len(info.classes) >= 2 and UNLABELLED not in info.classes


def audit_data(
    store: DatasetStore, dataset_id: str, loaded: LoadedModel, batch_size: int, max_images: int | None
) -> AuditData:
    """Preprocessed batches of ``dataset_id`` for ``loaded`` (an even spread of ``max_images`` images)."""
    info = store.get(dataset_id)
    n = info.num_images
    if n < 2:
        raise InvalidInputError(f"Dataset '{dataset_id}' has {n} image(s); the audit needs at least 2.")
    count = n if max_images is None else min(n, max_images)
    indices = even_spread(n, count)
    all_labels, _classes = store.labels(dataset_id)
    labels = all_labels[indices] if dataset_is_labelled(info) else None

    c, h, w = loaded.card.input_size
    keep = len(indices) * c * h * w * 4 <= KEEP_PREPROCESSED_BYTES
    kept: list[tuple[torch.Tensor, np.ndarray | None]] = []
    complete: list[bool] = []

    def load() -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
        chunk: list[torch.Tensor] = []
        start = 0
        for img in store.images_at(dataset_id, indices):
            chunk.append(preprocess(img, loaded.prep)[0])
            if len(chunk) == batch_size:
                yield (
                    loaded.to_input(torch.cat(chunk)),
                    None if labels is None else labels[start : start + len(chunk)],
                )
                start += len(chunk)
                chunk = []
        if chunk:
            yield (
                loaded.to_input(torch.cat(chunk)),
                None if labels is None else labels[start : start + len(chunk)],
            )

    def batches() -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
        """Preprocessed once and kept when small (the what-if passes reuse them), streamed otherwise."""
        if complete:
            yield from kept
            return
        kept.clear()
        for batch in load():
            if keep:
                kept.append(batch)
            yield batch
        if keep:
            complete.append(True)

    return AuditData(info, indices, labels, batches, -(-len(indices) // batch_size))


LATENT_DATASET = "latent"
LATENT_AUDIT_IMAGES = 512


def latent_info(count: int) -> DatasetInfo:
    """The 'dataset' a generator is audited on: ``count`` seeded latents (seeds 0..count-1, unlabelled)."""
    return DatasetInfo(
        id=LATENT_DATASET,
        name="seeded latent vectors",
        source="builtin",
        num_images=count,
        classes=(),
        class_counts={},
        content_hash=content_key("latent-v1", str(count)),
        created=0.0,
        description="a generator's inputs: the latent vector of each seed 0..n-1",
        builtin=True,
    )


def latent_data(loaded: LoadedModel, batch_size: int, max_images: int | None) -> AuditData:
    """A generator's audit inputs: the latent of seed i is image 0 of POST /gan/{id}/generate's seed i."""
    from server.engine.gan import seeded_latents

    count = max_images or LATENT_AUDIT_IMAGES
    dim = loaded.card.input_size[0]
    z = torch.cat([seeded_latents(i, 1, dim) for i in range(count)])[:, :, None, None]

    def batches() -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
        for i in range(0, count, batch_size):
            yield loaded.to_input(z[i : i + batch_size]), None

    return AuditData(latent_info(count), list(range(count)), None, batches, -(-count // batch_size))


def model_label_map(info: DatasetInfo, loaded: LoadedModel) -> np.ndarray:
    """Dataset label index -> model class index, so that accuracy can be measured."""
    if not dataset_is_labelled(info):
        raise InvalidInputError(
            f"The what-if measures accuracy, so it needs a labelled dataset; '{info.id}' is unlabelled."
        )
    model_labels = {label: i for i, label in enumerate(loaded.card.labels)}
    missing = [c for c in info.classes if c not in model_labels]
    if missing:
        raise InvalidInputError(
            f"The what-if needs the dataset's classes to be the model's classes; {', '.join(missing[:5])} "
            f"of '{info.id}' are not labels of '{loaded.id}'."
        )
    return np.array([model_labels[c] for c in info.classes], dtype=np.int64)


def audit_key(req: AuditRequest, info: DatasetInfo) -> str:
    return content_key("audit-v2", json.dumps(req.params(), sort_keys=True), info.content_hash)


def top_images(pooled: np.ndarray | None, indices: list[int], k: int = 4) -> list[list[int]]:
    """For each filter, the dataset indices of the ``k`` images with its strongest mean response."""
    if pooled is None or pooled.shape[0] == 0:
        return []
    k = min(k, pooled.shape[0])
    best = np.argsort(-pooled, axis=0, kind="stable")[:k].T  # (C, k)
    idx = np.asarray(indices)
    return idx[best].tolist()


def evaluate_gates(spec: str, summary: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"gate": str(g), "value": g.measure(summary), "failed": g.failed(summary)} for g in parse_gates(spec)
    ]


# --- the service ----------------------------------------------------------------------------------------


class AuditService:
    """Plan and run neuron audits of the zoo's models over one data directory's datasets."""

    def __init__(self, zoo: ZooManager, datasets: DatasetStore, artifacts: ArtifactStore) -> None:
        self.zoo = zoo
        self.datasets = datasets
        self.artifacts = artifacts

    def plan(self, req: AuditRequest) -> JobPlan:
        """Everything that can be checked before the job (4xx), and the job that audits ``req``."""
        req.validate()
        spec = self.zoo.spec(req.model)  # 404 with suggestions
        if spec.card.kind == "generator":  # its inputs are latents, not images
            if req.dataset != LATENT_DATASET:
                raise InvalidInputError(
                    f"Model '{req.model}' is a generator: audit it on dataset '{LATENT_DATASET}' "
                    "(seeded latent vectors), not on images."
                )
            info = latent_info(req.max_images or LATENT_AUDIT_IMAGES)
        else:
            info = self.datasets.get(req.dataset)  # 404; creates a built-in on first use
        if req.what_if:  # 422 for unlabelled data or classes the model does not have
            model_label_map(info, self.zoo.load(req.model, req.untrained))
        return JobPlan(
            AUDIT_TASK,
            req.params(),
            audit_key(req, info),
            {"model": req.model, "dataset": req.dataset, "untrained": req.untrained},
        )

    def run(self, req: AuditRequest, progress: Progress = no_progress) -> dict[str, Any]:
        """Audit ``req.model`` over ``req.dataset``; the result as JSON, reports stored as artifacts."""
        thresholds = req.validate()
        loaded = self.zoo.load(req.model, req.untrained)
        if loaded.card.kind == "generator":
            data = latent_data(loaded, req.batch_size, req.max_images)
        else:
            data = audit_data(self.datasets, req.dataset, loaded, req.batch_size, req.max_images)
        label_map = model_label_map(data.info, loaded) if req.what_if else None
        progress(0.0, f"auditing {loaded.id} on {len(data.indices)} images of {data.info.id}")
        with loaded.lock:
            result = engine_audit(
                loaded.model,
                data.batches(),
                thresholds=thresholds,
                positions_per_image=req.positions_per_image,
                similarity_samples=req.similarity_samples,
                total_batches=data.total_batches,
                progress=lambda f, m: progress(0.85 * f, m),
            )
        report = result.to_dict()
        report.update(
            loaded.describe(),
            dataset={
                "id": data.info.id,
                "name": data.info.name,
                "images": len(data.indices),
                "classes": list(data.info.classes),
            },
            images=len(data.indices),
        )
        tops = {la.name: top_images(la.pooled, data.indices) for la in result.layers}
        for layer in report["layers"]:
            layer["top_images"] = tops[layer["name"]]
        for flag in report["flags"]:
            flag["top_images"] = tops[flag["layer"]][flag["filter"]]
        if req.what_if:
            assert label_map is not None
            progress(0.85, "what-if: zeroing the flagged filters")
            zero = result.flagged(req.what_if_kinds)

            def labelled_batches() -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
                for x, y in data.batches():
                    yield x, None if y is None else label_map[y]

            with loaded.lock:
                example = next(data.batches())[0][:1]
                report["what_if"] = what_if_zeroing(loaded.model, labelled_batches, zero, example).to_dict()
                report["what_if"]["kinds"] = list(req.what_if_kinds)
        else:
            report["what_if"] = None
        report["gates"] = evaluate_gates(req.fail_on, report["summary"]) if req.fail_on else None
        progress(0.97, "writing reports")
        self._store_reports(audit_key(req, data.info), report, result, data.indices)
        return report

    def report(self, req: AuditRequest, progress: Progress = no_progress) -> dict[str, Any]:
        """The report of ``req``: the one an earlier run stored, while it is kept, else a fresh run."""
        req.validate()
        if self.zoo.spec(req.model).card.kind != "generator":
            key = audit_key(req, self.datasets.get(req.dataset))
            if self.artifacts.exists(key, "audit.json"):
                return json.loads(self.artifacts.path(key, "audit.json").read_text())
        return self.run(req, progress)

    def _store_reports(self, key: str, report: dict[str, Any], result: Any, indices: list[int]) -> None:
        """The correlation matrices and the worst checkerboard maps, then the JSON and HTML reports that
        link them, as artifacts."""
        if result.checkerboard is not None and report.get("checkerboard"):
            for i, (layer, out) in enumerate(
                zip(result.checkerboard.layers, report["checkerboard"]["layers"], strict=True)
            ):
                for j, (worst, entry) in enumerate(zip(layer.worst, out["worst"], strict=True)):
                    entry["image"] = indices[worst.image]  # the dataset's index of the image
                    png = png_bytes(signed_map_to_rgb(worst.map), upscale_to=192)
                    entry["url"] = self.artifacts.put(key, f"checker_{i:03d}_{j}.png", png)
            by_layer = {la["layer"]: la for la in report["checkerboard"]["layers"]}
            for layer in report["layers"]:
                if layer.get("checkerboard"):
                    layer["checkerboard"] = by_layer[layer["name"]]
        correlation = {}
        for i, layer in enumerate(result.layers):
            if layer.correlation is not None:
                correlation[layer.name] = self.artifacts.put(
                    key, f"corr_{i:03d}.npy", correlation_npy(layer.correlation)
                )
        report["artifacts"] = {
            "json": self.artifacts.url(key, "audit.json"),
            "html": self.artifacts.url(key, "audit.html"),
            "correlation": correlation,
        }
        self.artifacts.put(key, "audit.json", render_json(report).encode())
        self.artifacts.put(key, "audit.html", render_html(report).encode())
