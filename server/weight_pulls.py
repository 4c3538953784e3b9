"""Pulling a zoo model's official weights from the API, as a job with download progress (issue 17): the same
download, SHA-256 check, conversion, dry-run and registration as ``convlens weights pull``, permitted only by
``CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true``.

``plan`` refuses up front: an unknown model (404), downloads not allowed (403), a model with no official
weights to pull (422), a model whose weights are already on this machine (409). The job's progress is the
download's bytes over the announced total; its frame lists every file with ``received`` and ``total``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from server.config import Settings
from server.errors import ConflictError, ForbiddenError
from server.jobs import JobPlan
from server.zoo import pull
from server.zoo.manager import ZooManager
from server.zoo.registry import ModelSpec

WEIGHT_PULL_TASK = "weight_pull"
_DOWNLOAD_SHARE = 0.9  # of the job's progress; checking, converting and the dry-run load take the rest

Report = Callable[..., None]


def has_local_weights(spec: ModelSpec) -> bool:
    """Whether ``spec``'s trained weights are a file on this machine (not missing, not a download on load)."""
    try:
        loc = spec.peek()
    except Exception:  # a broken catalogue entry: nothing usable on disk
        return False
    return loc.status == "available" and loc.path is not None


class WeightPullService:
    """Plan and run weight pulls for the zoo of ``settings.models_dir``; one pull at a time per process."""

    def __init__(self, settings: Settings, zoo: ZooManager) -> None:
        self.settings = settings
        self.zoo = zoo
        self._lock = threading.Lock()

    def can_pull(self, model_id: str) -> bool:
        """Whether ``POST /models/{id}/weights/pull`` would start a job (the model card's ``weights_pull``)."""
        return (
            self.settings.allow_weight_downloads
            and model_id in pull.pullable_ids()
            and not has_local_weights(self.zoo.spec(model_id))
        )

    def plan(self, model_id: str) -> JobPlan:
        spec = self.zoo.spec(model_id)  # 404 with suggestions
        if not self.settings.allow_weight_downloads:
            raise ForbiddenError(
                "Downloading weights from the server is off: set CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true and "
                f"restart it, or run `convlens weights pull {model_id}` on the server's machine."
            )
        weights = pull.official_weights(model_id)  # 422: nothing to pull
        if has_local_weights(spec):
            raise ConflictError(f"'{model_id}' already has its weights on this machine: nothing to pull.")
        return JobPlan(
            WEIGHT_PULL_TASK,
            {"model_id": model_id},
            details={"model_id": model_id, "file": weights.file_name},
        )

    def run(self, params: dict[str, Any], report: Report) -> dict[str, Any]:
        """Pull the weights of ``params["model_id"]``, reporting each chunk's bytes; returns what was stored."""
        weights = pull.official_weights(params["model_id"])
        name = weights.file_name
        report(
            0.0, f"Downloading {name}", {"files": [{"name": name, "received": 0, "total": None}]}, force=True
        )

        def on_bytes(received: int, total: int | None) -> None:
            share = received / total if total else 0.0
            of = f" of {total:,}" if total else ""
            frame = {"files": [{"name": name, "received": received, "total": total}]}
            report(share * _DOWNLOAD_SHARE, f"{name}: {received:,}{of} bytes", frame)

        with self._lock:  # two pulls of one file would race on the catalogue
            pulled = pull.pull(weights, self.settings, on_bytes)
        report(1.0, f"{weights.stored_name} stored and named in the catalogue")
        return {
            "model_id": pulled.model_id,
            "file": pulled.path.name,
            "sha256": pulled.sha256,
            "already_there": pulled.already_there,
        }
