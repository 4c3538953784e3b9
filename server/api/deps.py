"""Dependencies shared by the routers - the app's services, one alias each - and two helpers:
reading an upload within the limits, and starting a job with the one job-start reply."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from server.api.admission import Admission
from server.api.schemas.jobs import JobStarted
from server.artifacts import ArtifactStore
from server.attributions import AttributionService
from server.audits import AuditService
from server.checkpoints import CheckpointService
from server.compare import CompareService
from server.config import Settings
from server.datasets.store import DatasetStore
from server.deepvis import DeepVisService
from server.errors import PayloadTooLargeError, UnsupportedMediaError
from server.explore import ExploreService
from server.gan import GanService
from server.jobs import JobManager, JobPlan
from server.projections import ProjectionService
from server.recurrent import RecurrentService
from server.services import Services
from server.top_images import TopImagesService
from server.weight_pulls import WeightPullService
from server.zoo.manager import ZooManager


def _admission(request: Request) -> Admission:
    return request.app.state.admission


AdmissionDep = Annotated[Admission, Depends(_admission)]


def get_services(request: Request) -> Services:
    """The app's services, built once by :func:`server.api.app.create_app`."""
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def _service(name: str) -> Callable[[Services], Any]:
    """A dependency that answers one of the app's services by its attribute name on :class:`Services`."""

    def get(s: ServicesDep) -> Any:
        return getattr(s, name)

    get.__name__ = f"get_{name}"
    return get


SettingsDep = Annotated[Settings, Depends(_service("settings"))]
ZooDep = Annotated[ZooManager, Depends(_service("zoo"))]
JobsDep = Annotated[JobManager, Depends(_service("jobs"))]
ArtifactsDep = Annotated[ArtifactStore, Depends(_service("artifacts"))]
DatasetsDep = Annotated[DatasetStore, Depends(_service("datasets"))]
ExploreDep = Annotated[ExploreService, Depends(_service("explore"))]
AttributionsDep = Annotated[AttributionService, Depends(_service("attributions"))]
ProjectionsDep = Annotated[ProjectionService, Depends(_service("projections"))]
AuditsDep = Annotated[AuditService, Depends(_service("audits"))]
CheckpointsDep = Annotated[CheckpointService, Depends(_service("checkpoints"))]
CompareDep = Annotated[CompareService, Depends(_service("compare"))]
DeepVisDep = Annotated[DeepVisService, Depends(_service("deepvis"))]
TopImagesDep = Annotated[TopImagesService, Depends(_service("top_images"))]
GanDep = Annotated[GanService, Depends(_service("gan"))]
RecurrentDep = Annotated[RecurrentService, Depends(_service("recurrent"))]
WeightPullsDep = Annotated[WeightPullService, Depends(_service("weight_pulls"))]

Reply = TypeVar("Reply", bound=JobStarted)


async def start_job(jobs: JobManager, plan: JobPlan, reply: type[Reply]) -> Reply:
    """Submit ``plan`` (or find its identical finished job) and answer in the route's JobStarted shape."""
    state = await run_in_threadpool(jobs.submit, plan.kind, plan.params, plan.cache_key)
    return reply.of(state, **plan.details)


async def read_upload(upload: UploadFile | None, settings: Settings, what: str = "image") -> bytes:
    """The bytes of an uploaded file, refusing more than ``max_upload_bytes`` without reading it all."""
    if upload is None:
        raise UnsupportedMediaError(f"Send the {what} as a multipart file field named '{what}'.")
    limit = settings.max_upload_bytes
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLargeError(f"Upload of {upload.size:,} bytes exceeds the limit of {limit:,} bytes.")
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"Upload exceeds the limit of {limit:,} bytes.")
    return data
