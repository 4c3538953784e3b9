"""Checkpoint comparison: how much each filter moved between snapshots of one architecture.

:class:`CheckpointService` lists the checkpoint files stored under ``models_dir/<model>/``, loads
them (or the zoo's weights), checks that they share one architecture and compares them in order.
The API plans comparison jobs with it, the ``checkpoint_compare`` task runs them, and
``convlens compare`` runs one directly. No web imports.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from server.engine.audit import AuditThresholds, check_same_architecture, compare_series
from server.errors import InvalidInputError, NotFoundError
from server.jobs import JobPlan, Progress, no_progress
from server.zoo.checkpoints import STATE_DICT_SUFFIXES, read_state_dict
from server.zoo.manager import LoadedModel, ZooManager

COMPARE_TASK = "checkpoint_compare"
LOADED_CHECKPOINTS = 4  # checkpoint models kept loaded (digits_cnn's take 0.3 MB each)
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


def _natural(key: str) -> list[Any]:
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", key)]


class CheckpointService:
    """Checkpoints of the zoo's models, stored under ``models_dir``, and comparisons between them."""

    def __init__(self, models_dir: Path, zoo: ZooManager) -> None:
        self.models_dir = Path(models_dir)
        self.zoo = zoo
        self._models: OrderedDict[tuple[str, str, int], LoadedModel] = OrderedDict()
        self._lock = threading.Lock()

    def files(self, model_id: str) -> dict[str, Path]:
        """The checkpoint files stored for ``model_id`` (``models_dir/<model_id>/*.safetensors|.pt|...``)."""
        if not _NAME_RE.match(model_id) or model_id.startswith("."):
            raise NotFoundError(f"Unknown model '{model_id}'.")
        folder = self.models_dir / model_id
        if not folder.is_dir():
            return {}
        return {
            p.stem: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in STATE_DICT_SUFFIXES
        }

    def load(self, ref: CheckpointRef) -> dict[str, torch.Tensor]:
        if ref.checkpoint is None:
            loaded = self.zoo.load(ref.model, ref.untrained)
            return {k: v.detach().cpu() for k, v in loaded.model.state_dict().items()}
        self.zoo.spec(ref.model)  # unknown model -> 404 with suggestions
        return read_state_dict(self.path(ref))

    def path(self, ref: CheckpointRef) -> Path:
        """The file of ``ref``'s checkpoint, by name or stem (404 naming the stored ones)."""
        files = self.files(ref.model)
        name = ref.checkpoint or ""
        path = files.get(name) or next((p for p in files.values() if p.name == name), None)
        if path is None:
            raise NotFoundError.with_suggestions(f"checkpoint of '{ref.model}'", name, files)
        return path

    def loaded(self, ref: CheckpointRef) -> LoadedModel:
        """``ref`` as a model ready for inference: the zoo's for its own weights, else the architecture with
        the checkpoint's weights (the last few kept, so that a page comparing two snapshots reuses them)."""
        if ref.checkpoint is None:
            return self.zoo.load(ref.model, ref.untrained)
        self.zoo.spec(ref.model)
        path = self.path(ref)
        key = (ref.model, path.name, path.stat().st_mtime_ns)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
        loaded = self.zoo.with_state(ref.model, read_state_dict(path), f"checkpoint '{path.name}'")
        with self._lock:
            self._models[key] = loaded
            while len(self._models) > LOADED_CHECKPOINTS:
                self._models.popitem(last=False)
        return loaded

    def definition_order(self, model_id: str, state: dict[str, torch.Tensor]) -> list[str]:
        """``state``'s keys in the model's definition order (safetensors files keep them sorted by name)."""
        try:
            with torch.device("meta"):
                own = list(self.zoo.spec(model_id).build().state_dict())
        except Exception:  # an architecture that cannot be built on the meta device: keep natural order
            own = []
        known = [k for k in own if k in state]
        rest = sorted((k for k in state if k not in set(known)), key=_natural)
        return known + rest

    def plan(self, params: dict[str, Any]) -> JobPlan:
        """Check the checkpoints exist and share one architecture (422 naming the differences)."""
        AuditThresholds.from_mapping(params.get("thresholds"))
        refs = checkpoint_refs(params)
        first = self.load(refs[0])
        for ref in refs[1:]:
            check_same_architecture(first, self.load(ref), (refs[0].label, ref.label))
        details = {"checkpoints": [ref.label for ref in refs], "untrained": any(r.untrained for r in refs)}
        return JobPlan(COMPARE_TASK, params, None, details)

    def compare(self, params: dict[str, Any], progress: Progress = no_progress) -> dict[str, Any]:
        """Consecutive comparisons of the checkpoints in ``params['checkpoints']``."""
        thresholds = AuditThresholds.from_mapping(params.get("thresholds"))
        refs = checkpoint_refs(params)
        states = []
        for i, ref in enumerate(refs):
            progress(0.8 * i / len(refs), f"loading {ref.label}")
            states.append((ref.label, self.load(ref)))
        for (na, sa), (nb, sb) in itertools.pairwise(states):
            check_same_architecture(sa, sb, (na, nb))
        order = self.definition_order(refs[0].model, states[0][1])
        states = [(name, {k: state[k] for k in order}) for name, state in states]
        progress(0.8, "comparing")
        series = compare_series(states, thresholds.unchanged_update)
        return {
            "checkpoints": [ref.__dict__ | {"label": ref.label} for ref in refs],
            "untrained": any(ref.untrained for ref in refs),
            "unchanged_update": thresholds.unchanged_update,
            "comparisons": [c.to_dict() for c in series],
        }
