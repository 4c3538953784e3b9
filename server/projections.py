"""Projection jobs: features of (model, layer, dataset) -> a 2-D projection -> class purity.

Application logic between the web layer and the engine (no web imports). ``ProjectionService``
validates a request up front (unknown model, layer, dataset, method or parameter, perplexity >= N,
fewer than 5 points, and - when the features are already cached - NaN or constant features), runs
it as a job that streams frames, and keeps finished results on disk next to the dataset so that
they survive restarts and disappear with it. One per :class:`server.services.Services`: the API's
routers and its in-process jobs share it (and its caches); a Celery worker has its own.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from server.datasets.store import DatasetStore
from server.engine.features import POOLINGS, check_features
from server.engine.projection import METHODS, GraphCache, TSNERun, project, validate_params
from server.engine.projection.cautions import check_seeds, check_sweep
from server.engine.purity import purity_report
from server.errors import ConflictError, InvalidInputError, NotFoundError
from server.features_cache import DatasetFeatures, FeatureCache, feature_key
from server.jobs import JobPlan, JobState, Progress, no_progress
from server.projection_cautions import projection_cautions
from server.zoo.manager import ZooManager

PROJECTION_TASK = "projection"
FEATURES_TASK = "features"
LIVE_KEYS = ("learning_rate", "perplexity")
FRAME_INTERVAL_S = 0.1  # at most ~10 frames a second reach the job store
LIVE_CHUNK_S = 0.2  # live values are read at least this often (chunks of iterations are cut to fit)


@dataclass(frozen=True)
class ProjectionRequest:
    """What POST /api/v1/projections asks for."""

    model: str
    layer: str
    dataset: str
    method: str = "tsne"
    params: dict[str, Any] | None = None
    pool: str = "mean"
    reduce: int | None = None
    untrained: bool = False
    k: int = 10
    seeds: list[int] | None = None
    baseline: str | None = None
    perplexities: list[float] | None = None

    def to_job_params(self) -> dict[str, Any]:
        return {
            "seeds": None if self.seeds is None else list(self.seeds),
            "baseline": self.baseline,
            "perplexities": None if self.perplexities is None else list(self.perplexities),
            "model": self.model,
            "layer": self.layer,
            "dataset": self.dataset,
            "method": self.method,
            "params": dict(self.params or {}),
            "pool": self.pool,
            "reduce": self.reduce,
            "untrained": self.untrained,
            "k": self.k,
        }

    @classmethod
    def from_job_params(cls, params: dict[str, Any]) -> ProjectionRequest:
        return cls(**{k: params[k] for k in cls.__dataclass_fields__ if k in params})


def _json_number(v: Any) -> Any:
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(float(v)) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def coords_json(coords: np.ndarray) -> list[list[float]]:
    return np.round(np.asarray(coords, dtype=np.float64), 4).tolist()


def projection_csv(state: JobState) -> tuple[str, str]:
    """(CSV text, file name): index, x, y, label, predicted class of every point of a projection job -
    its result, or its latest frame while it runs."""
    result = state.result if state.status == "succeeded" else None
    coords = (result or {}).get("coords") or (state.frame or {}).get("coords")
    if not coords:
        raise ConflictError(f"Job '{state.id}' has no coordinates yet ({state.status}).")
    labels = (result or {}).get("labels")
    classes = (result or {}).get("classes") or []
    preds = (result or {}).get("predictions")
    model_labels = (result or {}).get("model_labels") or []
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["index", "x", "y", "label", "predicted"])
    for i, (x, y) in enumerate(coords):
        label = classes[labels[i]] if labels is not None and labels[i] < len(classes) else ""
        pred = ""
        if preds is not None:
            pred = model_labels[preds[i]] if preds[i] < len(model_labels) else str(preds[i])
        writer.writerow([i, x, y, label, pred])
    name = f"projection-{state.params.get('dataset', 'data')}-{state.params.get('method', '')}-{state.id[:8]}.csv"
    return buf.getvalue(), name


class ProjectionService:
    """Validate, run and cache projections of one data directory's datasets."""

    def __init__(
        self, datasets: DatasetStore, zoo: ZooManager, features: FeatureCache, n_jobs: int = 1
    ) -> None:
        self.datasets = datasets
        self.zoo = zoo
        self.features = features
        self.graphs = GraphCache()
        self.n_jobs = n_jobs
        self._graph_lock = threading.Lock()

    # --- before the job ------------------------------------------------------------------------------

    def plan(self, req: ProjectionRequest) -> JobPlan:
        """Validate everything that can be checked now; the job, keyed by features, method and params."""
        if req.method not in METHODS:
            raise InvalidInputError(
                f"Unknown projection method '{req.method}'; use one of {', '.join(METHODS)}."
            )
        if req.pool not in POOLINGS:
            raise InvalidInputError(f"Unknown pooling '{req.pool}'; use one of {', '.join(POOLINGS)}.")
        if req.reduce is not None and req.reduce < 2:
            raise InvalidInputError("reduce must be at least 2 PCA components (or empty for no reduction).")
        if not 1 <= req.k <= 100:
            raise InvalidInputError("k (neighbours for purity) must be between 1 and 100.")
        if req.baseline not in (None, "noise"):
            raise InvalidInputError(f"baseline must be 'noise' (or empty); got {req.baseline!r}.")
        info = self.datasets.get(req.dataset)
        loaded = self.zoo.load(req.model, req.untrained)
        loaded.layer(req.layer)
        req_params = dict(req.params or {})
        if req.seeds is not None:
            check_seeds(req.seeds)
            if req.method == "tsne":  # seeds only matter for a random start; PCA's start is the same
                req_params.setdefault("init", "random")
        if req.perplexities is not None:
            if req.method != "tsne":
                raise InvalidInputError(
                    f"perplexities sweeps t-SNE's perplexity; this request is {req.method}."
                )
            check_sweep(req.perplexities, info.num_images)
        params = validate_params(req.method, req_params, info.num_images)
        if req.seeds is not None and "seed" in params:
            params["seed"] = int(req.seeds[0])  # the main run is the first seed's
        cached = self.features.cached(loaded, req.layer, req.dataset, req.pool, req.reduce)
        if cached is not None:
            check_features(cached)
        fkey = feature_key(loaded, req.layer, info, req.pool, req.reduce)
        key = hashlib.sha256(
            json.dumps(
                [fkey, req.method, params, req.k, req.seeds, req.baseline, req.perplexities], sort_keys=True
            ).encode()
        ).hexdigest()[:24]
        job = {**req.to_job_params(), "params": params, "result_key": key}
        details = {
            "n_points": info.num_images,
            "method": req.method,
            "params": params,
            "untrained": req.untrained,
        }
        return JobPlan(PROJECTION_TASK, job, key, details)

    # --- the job -------------------------------------------------------------------------------------

    def result_path(self, dataset_id: str, key: str) -> Path:
        return self.datasets.cache_dir(dataset_id) / "projections" / f"{key}.json"

    def run(self, ctx: Any, params: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        """Run a projection job: features (cached), projection with frames, purity; result cached on disk."""
        req = ProjectionRequest.from_job_params(params)
        if key is not None:
            path = self.result_path(req.dataset, key)
            with self.features.budget.pin(path):
                if path.is_file():
                    self.features.budget.touch(path)
                    ctx.report(1.0, "cached result")
                    return json.loads(path.read_text())
        loaded = self.zoo.load(req.model, req.untrained)
        ctx.report(0.0, f"features of {req.layer} on {req.dataset}")
        feats = self.features.features(
            loaded,
            req.layer,
            req.dataset,
            req.pool,
            req.reduce,
            with_predictions=True,
            progress=lambda f, m: ctx.report(0.4 * f, m),
        )
        x = check_features(feats.features)
        method_params = validate_params(req.method, req.params, x.shape[0])
        live_changed = False
        runs = 1 + (len(req.seeds) - 1 if req.seeds else 0) + (req.baseline is not None)
        runs += len(req.perplexities or ())
        span = 0.5 / runs  # progress 0.45..0.95, shared by every run
        run: TSNERun | None = None
        if req.method == "tsne":
            projection, live_changed, run = self._run_tsne(ctx, feats, x, method_params, span)
        else:
            ctx.report(0.45, f"running {req.method}")
            projection = project(
                x,
                req.method,
                method_params,
                n_jobs=self.n_jobs,
                progress=lambda f: ctx.report(0.45 + span * f),
            )
        ctx.report(0.96, "class purity")
        result = self._result(req, feats, projection, live_changed)
        result.update(
            projection_cautions(
                ctx, req, feats, x, method_params, projection, run, n_jobs=self.n_jobs, start=0.45 + span
            )
        )
        ctx.report(
            0.99, "done", frame=self._frame(result["coords"], {"iteration": None, "final": True}), force=True
        )
        if live_changed:  # steered by hand: not what the same request would give, so not a cache entry
            ctx.store.update(ctx.job_id, cache_key=None)
        elif key is not None:
            self._save(self.result_path(req.dataset, key), result)
        return result

    def _run_tsne(
        self, ctx: Any, feats: DatasetFeatures, x: np.ndarray, params: dict[str, Any], span: float = 0.5
    ) -> tuple[Any, bool, TSNERun]:
        with self._graph_lock:
            graph = self.graphs.get(feats.key, params["metric"], params["perplexity"])
        run = TSNERun(x, params, graph=graph, n_jobs=self.n_jobs)
        with self._graph_lock:
            self.graphs.put(feats.key, run.graph)
        ctx.report(0.45, "neighbour graph ready" if graph is None else "neighbour graph reused")
        last = {"t": 0.0}
        changed = {"any": False}

        def on_frame(frame: dict[str, Any]) -> None:
            now = time.monotonic()
            final = run.done
            if not final and now - last["t"] < FRAME_INTERVAL_S:
                ctx.check_cancelled()
                return
            last["t"] = now
            meta = {k: _json_number(v) for k, v in frame.items() if k != "coords"}
            meta["graph_builds"] = run.graph_builds
            progress = 0.45 + span * frame["iteration"] / max(frame["total_iter"], 1)
            ctx.report(
                progress,
                f"t-SNE iteration {frame['iteration']}/{frame['total_iter']}",
                frame=self._frame(frame["coords"], meta),
                force=True,
            )

        def control() -> dict[str, Any]:
            values = {k: v for k, v in ctx.control().items() if k in LIVE_KEYS}
            if values:
                changed["any"] = True
            return values

        projection = run.run(on_frame, control, max_chunk_seconds=LIVE_CHUNK_S)
        if run.graph_builds:
            with self._graph_lock:
                self.graphs.put(feats.key, run.graph)
        projection.metrics["graph_reused"] = float(graph is not None and run.graph_builds == 0)
        return projection, changed["any"], run

    @staticmethod
    def _frame(coords: Any, meta: dict[str, Any]) -> dict[str, Any]:
        return {**meta, "coords": coords if isinstance(coords, list) else coords_json(coords)}

    def _result(
        self, req: ProjectionRequest, feats: DatasetFeatures, projection: Any, live_changed: bool
    ) -> dict[str, Any]:
        purity = purity_report(feats.features, projection.coords, feats.labels, feats.classes, k=req.k)
        return {
            "model": req.model,
            "untrained": req.untrained,
            "layer": req.layer,
            "dataset": req.dataset,
            "method": req.method,
            "pool": req.pool,
            "reduce": req.reduce,
            "params": {k: _json_number(v) for k, v in projection.params.items()},
            "live_changed": live_changed,
            "n": int(feats.features.shape[0]),
            "feature_dim": int(feats.features.shape[1]),
            "coords": coords_json(projection.coords),
            "labels": feats.labels.tolist(),
            "classes": list(feats.classes),
            "predictions": None if feats.predictions is None else feats.predictions.tolist(),
            "model_labels": list(feats.model_labels),
            "metrics": {k: _json_number(v) for k, v in projection.metrics.items()},
            "purity": purity,
        }

    def _save(self, path: Path, result: dict[str, Any]) -> None:
        self.features.budget.write(path, json.dumps(result).encode())

    def extract(self, params: dict[str, Any], progress: Progress = no_progress) -> dict[str, Any]:
        """The ``features`` job: extract (or find cached) features of a (model, layer, dataset) triple."""
        req = ProjectionRequest.from_job_params({"method": "pca", **params})
        loaded = self.zoo.load(req.model, req.untrained)
        feats = self.features.features(
            loaded, req.layer, req.dataset, req.pool, req.reduce, progress=progress
        )
        return {
            "model": req.model,
            "untrained": req.untrained,
            "layer": req.layer,
            "dataset": req.dataset,
            "pool": req.pool,
            "reduce": req.reduce,
            "key": feats.key,
            "n": int(feats.features.shape[0]),
            "dim": int(feats.features.shape[1]),
            "from_cache": feats.from_cache,
        }

    # --- while and after the job ---------------------------------------------------------------------

    def points(self, params: dict[str, Any]) -> dict[str, Any]:
        """Labels, predictions and class names of a job's points (for colouring while it runs)."""
        req = ProjectionRequest.from_job_params(params)
        labels, classes = self.datasets.labels(req.dataset)
        loaded = self.zoo.load(req.model, req.untrained)
        preds = self.features.predictions(loaded, req.dataset)
        return {
            "dataset": req.dataset,
            "n": int(labels.shape[0]),
            "labels": labels.tolist(),
            "classes": list(classes),
            "predictions": preds.tolist(),
            "model_labels": list(loaded.card.labels),
        }

    def activation(self, params: dict[str, Any], channel: int) -> list[float]:
        """The pooled activation of one filter of the job's layer for every image (colour by filter)."""
        req = ProjectionRequest.from_job_params(params)
        loaded = self.zoo.load(req.model, req.untrained)
        pool = req.pool if req.pool in ("mean", "max") else "mean"
        feats = self.features.features(loaded, req.layer, req.dataset, pool, None)
        d = feats.features.shape[1]
        if not 0 <= channel < d:
            raise NotFoundError(f"Layer '{req.layer}' has filters 0..{d - 1}; there is no filter {channel}.")
        return np.round(feats.features[:, channel].astype(np.float64), 5).tolist()

    def live_check(self, params: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """Validate a PATCH of a running t-SNE (learning_rate > 0, perplexity < N)."""
        if params.get("method") != "tsne":
            raise InvalidInputError(
                f"Only t-SNE runs can be changed live; this job runs {params.get('method')}."
            )
        values = {k: v for k, v in values.items() if v is not None}
        if not values:
            raise InvalidInputError("Send learning_rate and/or perplexity.")
        n = self.datasets.get(params["dataset"]).num_images
        merged = {**params["params"], **values}
        checked = validate_params("tsne", merged, n)
        return {k: checked[k] for k in values}
