"""Job tasks: adapters that turn a job's params into a call of one of ``ctx.services`` and report progress.

:data:`TASKS` is the one table of task kinds. The composition root (:mod:`server.services`) hands it
to the job manager and the in-process runner, and a Celery worker runs its jobs with it, so both
modes run the same tasks. Importing a task module registers nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from server.audits import AUDIT_TASK
from server.checkpoints import COMPARE_TASK
from server.compare import CKA_TASK
from server.deepvis import DEEPVIS_TASK
from server.jobs import Task
from server.projections import FEATURES_TASK, PROJECTION_TASK
from server.tasks import audits, compare, deepvis, projections, weights
from server.top_images import TOP_IMAGES_TASK
from server.weight_pulls import WEIGHT_PULL_TASK

TASKS: Mapping[str, Task] = MappingProxyType(
    {
        AUDIT_TASK: audits.audit,
        COMPARE_TASK: audits.checkpoint_compare,
        CKA_TASK: compare.cka,
        DEEPVIS_TASK: deepvis.deepvis,
        TOP_IMAGES_TASK: deepvis.top_images,
        PROJECTION_TASK: projections.projection,
        FEATURES_TASK: projections.features,
        WEIGHT_PULL_TASK: weights.weight_pull,
    }
)
