"""Neuron-audit and checkpoint-comparison jobs, and the service functions the CLI calls directly.

``run_audit`` loads a model from the zoo and a dataset from the DatasetStore, runs
:func:`server.engine.audit.audit_model` (holding the model's lock while hooks are on it), optionally
the what-if zeroing, and stores a JSON report, an HTML report and each layer's correlation matrix as
artifacts. ``run_checkpoint_comparison`` compares checkpoints of one architecture.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from server.artifacts import ArtifactStore, content_key
from server.config import Settings
from server.datasets.archive import UNLABELLED
from server.datasets.store import DatasetInfo, DatasetStore
from server.engine.audit import (
    KINDS,
    AuditThresholds,
    check_same_architecture,
    compare_series,
    parse_gates,
    what_if_zeroing,
)
from server.engine.audit import audit_model as engine_audit
from server.engine.imaging import preprocess
from server.errors import InvalidInputError, NotFoundError
from server.jobs import JobContext, task
from server.tasks.context import settings_for, zoo_for
from server.zoo.checkpoints import STATE_DICT_SUFFIXES, read_state_dict
from server.zoo.manager import LoadedModel, ZooManager

AUDIT_TASK = "audit"
KEEP_PREPROCESSED_BYTES = 256 * 1024 * 1024  # datasets this small are preprocessed once per audit
COMPARE_TASK = "checkpoint_compare"
Progress = Callable[[float, str], None]


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


# --- process-wide services (the API and a Celery worker both run these tasks) ------------------------------


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
    indices = sorted(set(np.linspace(0, n - 1, count).round().astype(int).tolist()))
    all_labels, _classes = store.labels(dataset_id)
    labels = all_labels[indices] if dataset_is_labelled(info) else None

    c, h, w = loaded.card.input_size
    keep = len(indices) * c * h * w * 4 <= KEEP_PREPROCESSED_BYTES
    kept: list[tuple[torch.Tensor, np.ndarray | None]] = []
    complete: list[bool] = []

    def images() -> Iterator[Any]:
        if len(indices) == n:  # every image: one pass over the stored archive
            yield from (img for _rec, img in store.iter_images(dataset_id))
        else:
            yield from (store.load_image(dataset_id, i) for i in indices)

    def load() -> Iterator[tuple[torch.Tensor, np.ndarray | None]]:
        chunk: list[torch.Tensor] = []
        start = 0
        for img in images():
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


# --- the audit ------------------------------------------------------------------------------------------


def audit_key(req: AuditRequest, info: DatasetInfo) -> str:
    return content_key("audit-v1", json.dumps(req.params(), sort_keys=True), info.content_hash)


def run_audit(
    req: AuditRequest,
    settings: Settings,
    zoo: ZooManager,
    progress: Progress | None = None,
    store: DatasetStore | None = None,
) -> dict[str, Any]:
    """Audit ``req.model`` over ``req.dataset``; the result as JSON, reports stored as artifacts."""
    from server.audit_report import correlation_npy, render_html, render_json

    progress = progress or (lambda _f, _m: None)
    thresholds = req.validate()
    store = store or DatasetStore.from_settings(settings)
    loaded = zoo.load(req.model, req.untrained)
    data = audit_data(store, req.dataset, loaded, req.batch_size, req.max_images)
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
    artifacts = ArtifactStore(settings.cache_dir / "artifacts")
    key = audit_key(req, data.info)
    correlation = {}
    for i, layer in enumerate(result.layers):
        if layer.correlation is not None:
            correlation[layer.name] = artifacts.put(
                key, f"corr_{i:03d}.npy", correlation_npy(layer.correlation)
            )
    report["artifacts"] = {
        "json": artifacts.url(key, "audit.json"),
        "html": artifacts.url(key, "audit.html"),
        "correlation": correlation,
    }
    artifacts.put(key, "audit.json", render_json(report).encode())
    artifacts.put(key, "audit.html", render_html(report).encode())
    return report


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


# --- checkpoints ----------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


@dataclass(frozen=True)
class CheckpointRef:
    model: str
    checkpoint: str | None = None  # a file in models_dir/<model>/ (by name or stem); None = the zoo weights
    untrained: bool = False

    @property
    def label(self) -> str:
        if self.checkpoint:
            return f"{self.model}:{self.checkpoint}"
        return f"{self.model}:{'untrained' if self.untrained else 'weights'}"


def checkpoint_files(settings: Settings, model_id: str) -> dict[str, Path]:
    """The checkpoint files stored for ``model_id`` (``models_dir/<model_id>/*.safetensors|.pt|...``)."""
    if not _NAME_RE.match(model_id) or model_id.startswith("."):
        raise NotFoundError(f"Unknown model '{model_id}'.")
    folder = settings.models_dir / model_id
    if not folder.is_dir():
        return {}
    return {p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in STATE_DICT_SUFFIXES}


def load_checkpoint(ref: CheckpointRef, settings: Settings, zoo: ZooManager) -> dict[str, torch.Tensor]:
    if ref.checkpoint is None:
        loaded = zoo.load(ref.model, ref.untrained)
        return {k: v.detach().cpu() for k, v in loaded.model.state_dict().items()}
    from server.zoo.registry import get_spec

    get_spec(ref.model)  # unknown model -> 404 with suggestions
    files = checkpoint_files(settings, ref.model)
    name = ref.checkpoint
    path = files.get(name) or next((p for p in files.values() if p.name == name), None)
    if path is None:
        raise NotFoundError.with_suggestions(f"checkpoint of '{ref.model}'", name, files)
    return read_state_dict(path)


def definition_order(model_id: str, state: dict[str, torch.Tensor]) -> list[str]:
    """``state``'s keys in the model's definition order (safetensors files keep them sorted by name)."""
    from server.zoo.registry import get_spec

    try:
        with torch.device("meta"):
            own = list(get_spec(model_id).build().state_dict())
    except Exception:  # an architecture that cannot be built on the meta device: keep natural order
        own = []
    known = [k for k in own if k in state]
    rest = sorted((k for k in state if k not in set(known)), key=_natural)
    return known + rest


def _natural(key: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


def checkpoint_refs(params: dict[str, Any]) -> list[CheckpointRef]:
    refs = []
    for item in params.get("checkpoints") or []:
        if isinstance(item, str):
            if not params.get("model"):
                raise InvalidInputError("Name the model when checkpoints are given by name.")
            refs.append(CheckpointRef(params["model"], item))
        else:
            refs.append(
                CheckpointRef(item["model"], item.get("checkpoint"), bool(item.get("untrained", False)))
            )
    if len(refs) < 2:
        raise InvalidInputError("Compare at least two checkpoints.")
    return refs


def run_checkpoint_comparison(
    params: dict[str, Any], settings: Settings, zoo: ZooManager, progress: Progress | None = None
) -> dict[str, Any]:
    """Consecutive comparisons of the checkpoints in ``params['checkpoints']``."""
    progress = progress or (lambda _f, _m: None)
    thresholds = AuditThresholds.from_mapping(params.get("thresholds"))
    refs = checkpoint_refs(params)
    states = []
    for i, ref in enumerate(refs):
        progress(0.8 * i / len(refs), f"loading {ref.label}")
        states.append((ref.label, load_checkpoint(ref, settings, zoo)))
    for (na, sa), (nb, sb) in itertools.pairwise(states):
        check_same_architecture(sa, sb, (na, nb))
    order = definition_order(refs[0].model, states[0][1])
    states = [(name, {k: state[k] for k in order}) for name, state in states]
    progress(0.8, "comparing")
    series = compare_series(states, thresholds.unchanged_update)
    return {
        "checkpoints": [ref.__dict__ | {"label": ref.label} for ref in refs],
        "untrained": any(ref.untrained for ref in refs),
        "unchanged_update": thresholds.unchanged_update,
        "comparisons": [c.to_dict() for c in series],
    }


# --- job tasks ------------------------------------------------------------------------------------------


@task(AUDIT_TASK)
def audit_task(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    settings = settings_for(params)
    req = AuditRequest.from_params(params)
    return run_audit(req, settings, zoo_for(settings), lambda f, m: ctx.report(f, m))


@task(COMPARE_TASK)
def checkpoint_compare_task(ctx: JobContext, params: dict[str, Any]) -> dict[str, Any]:
    settings = settings_for(params)
    return run_checkpoint_comparison(params, settings, zoo_for(settings), lambda f, m: ctx.report(f, m))
