"""Dependencies shared by the routers: settings, zoo, jobs, artifacts; upload reading with limits."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, UploadFile

from server.artifacts import ArtifactStore
from server.config import Settings
from server.datasets.store import DatasetStore
from server.errors import PayloadTooLargeError, UnsupportedMediaError
from server.jobs import JobManager
from server.projections import ProjectionService, register_service
from server.zoo.manager import ZooManager


def get_app_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_zoo(request: Request) -> ZooManager:
    return request.app.state.zoo


def get_jobs(request: Request) -> JobManager:
    return request.app.state.jobs


def get_artifacts(request: Request) -> ArtifactStore:
    return request.app.state.artifacts


def get_datasets(request: Request) -> DatasetStore:
    """The app's DatasetStore, created on first use from its settings (datasets_dir, cache_dir, limits)."""
    store = getattr(request.app.state, "datasets", None)
    if store is None:
        store = request.app.state.datasets = DatasetStore.from_settings(request.app.state.settings)
    return store


def get_projections(request: Request) -> ProjectionService:
    """The app's ProjectionService, registered so that in-process projection jobs share its caches."""
    service = getattr(request.app.state, "projections", None)
    if service is None:
        service = ProjectionService(get_datasets(request), request.app.state.zoo)
        register_service(service)
        request.app.state.projections = service
    return service


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ZooDep = Annotated[ZooManager, Depends(get_zoo)]
JobsDep = Annotated[JobManager, Depends(get_jobs)]
ArtifactsDep = Annotated[ArtifactStore, Depends(get_artifacts)]
DatasetsDep = Annotated[DatasetStore, Depends(get_datasets)]
ProjectionsDep = Annotated[ProjectionService, Depends(get_projections)]


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
