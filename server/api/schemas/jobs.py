"""The reply of every route that starts a job: :class:`JobStarted` and its per-route extensions."""

from __future__ import annotations

from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict

from server.jobs import JobState


class JobStarted(BaseModel):
    """A job was queued (or is already running or done): poll ``job_url`` for progress, frames and the result."""

    model_config = ConfigDict(protected_namespaces=())

    job_id: str
    status: str
    job_url: str

    @classmethod
    def of(cls, state: JobState, **details: Any) -> Self:
        """The reply for ``state``, with the route's ``details`` (the fields a subclass adds)."""
        return cls(job_id=state.id, status=state.status, job_url=f"/api/v1/jobs/{state.id}", **details)


class CachedJobStarted(JobStarted):
    """A job whose identical, finished predecessor is returned instead of a new run (``cached``)."""

    cached: bool

    @classmethod
    def of(cls, state: JobState, **details: Any) -> Self:
        return super().of(state, cached=state.status == "succeeded", **details)


class JobOut(BaseModel):
    """A job's state: progress, the latest frame (``frame_index`` counts them), and the result or error."""

    id: str
    kind: str
    params: dict[str, Any]
    status: Literal["queued", "running", "succeeded", "failed", "cancelled", "interrupted"]
    progress: float
    message: str
    frame: Any = None
    frame_index: int
    result: Any = None
    error: str | None = None
    error_status: int | None = None
    created: float
    updated: float
    heartbeat: float
    worker: str | None = None


class WeightPullStarted(JobStarted):
    """A weight pull was queued: the job's progress is the download's bytes, its frame every file's."""

    model_id: str
    file: str  # the official file name being downloaded
