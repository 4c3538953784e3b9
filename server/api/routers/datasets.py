"""Datasets: list, inspect, upload (a zip with one folder per class, or many images), delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Response, UploadFile
from starlette.concurrency import run_in_threadpool

from server.api.deps import DatasetsDep, SettingsDep
from server.api.openapi import error_responses, file_response
from server.api.schemas.datasets import DatasetDetailOut, DatasetOut, DeletedOut
from server.errors import InvalidInputError, PayloadTooLargeError

router = APIRouter(
    prefix="/api/v1/datasets", tags=["datasets"], responses=error_responses(400, 404, 409, 413, 415, 422, 507)
)

PREFIX = "/api/v1/datasets"


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    if upload.size is not None and upload.size > limit:
        raise PayloadTooLargeError(
            f"{upload.filename}: {upload.size:,} bytes exceed the limit of {limit:,} bytes."
        )
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"{upload.filename}: the upload exceeds the limit of {limit:,} bytes.")
    return data


@router.get("", response_model=list[DatasetOut])
async def list_datasets(datasets: DatasetsDep) -> list[dict[str, Any]]:
    """Every dataset with its counts and class balance; the built-ins are created on first listing."""

    def work() -> list[dict[str, Any]]:
        datasets.ensure_builtins()
        return [d.to_dict() for d in datasets.list()]

    return await run_in_threadpool(work)


@router.get("/{dataset_id}", response_model=DatasetDetailOut)
async def get_dataset(
    dataset_id: str,
    datasets: DatasetsDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> dict[str, Any]:
    """A dataset's info and a page of its images (label, image and thumbnail URLs)."""
    info = await run_in_threadpool(datasets.get, dataset_id)
    records = info.records[offset : offset + limit]
    images = [
        {
            "index": r.index,
            "label": r.label,
            "label_index": r.label_index,
            "image_url": f"{PREFIX}/{info.id}/images/{r.index}",
            "thumbnail_url": f"{PREFIX}/{info.id}/thumbnails/{r.index}",
        }
        for r in records
    ]
    return {**info.to_dict(), "images": images, "offset": offset, "limit": limit}


@router.get(
    "/{dataset_id}/images/{index}",
    response_class=Response,
    responses=file_response("image/png", "image/jpeg", "image/webp", "image/bmp", "image/gif", "image/tiff"),
)
def get_image(dataset_id: str, index: int, datasets: DatasetsDep) -> Response:
    """One image as it was uploaded."""
    data, media = datasets.image_bytes(dataset_id, index)
    return Response(data, media_type=media, headers={"Cache-Control": "max-age=3600"})


@router.get("/{dataset_id}/thumbnails/{index}", response_class=Response, responses=file_response("image/png"))
def get_thumbnail(dataset_id: str, index: int, datasets: DatasetsDep) -> Response:
    """A PNG thumbnail, at most 64 pixels a side."""
    return Response(
        datasets.thumbnail_bytes(dataset_id, index),
        media_type="image/png",
        headers={"Cache-Control": "max-age=3600"},
    )


# Exactly one of `archive` and `images`: the contract says so too.
_ONE_SOURCE = {
    "oneOf": [
        {
            "required": ["archive"],
            "properties": {"archive": {"type": "string", "format": "binary"}, "images": False},
        },
        {
            "required": ["images"],
            "properties": {
                "images": {"type": "array", "minItems": 1, "items": {"type": "string", "format": "binary"}},
                "archive": False,
            },
        },
    ]
}


@router.post(
    "",
    response_model=DatasetOut,
    status_code=201,
    openapi_extra={"requestBody": {"content": {"multipart/form-data": {"schema": _ONE_SOURCE}}}},
)
async def create_dataset(
    datasets: DatasetsDep,
    settings: SettingsDep,
    name: Annotated[str, Form(min_length=1, max_length=100)],
    archive: Annotated[UploadFile | None, File(description="a .zip with one folder per class")] = None,
    images: Annotated[list[UploadFile] | None, File(description="many images at once")] = None,
    labels: Annotated[
        list[str] | None, Form(description="one label for all images, or one per image")
    ] = None,
) -> dict[str, Any]:
    """Create a dataset from a zip archive or from many images; a bad upload is refused whole."""
    if (archive is None) == (not images):
        raise InvalidInputError(
            "Send either 'archive' (a zip with one folder per class) or 'images' (files)."
        )
    if archive is not None:
        data = await _read_limited(archive, settings.max_archive_bytes)
        info = await run_in_threadpool(datasets.create_from_zip, name, data)
        return info.to_dict()
    assert images is not None
    if len(images) > settings.max_archive_files:
        raise PayloadTooLargeError(
            f"{len(images):,} files exceed the limit of {settings.max_archive_files:,}."
        )
    files = [
        (f.filename or f"image{i}", await _read_limited(f, settings.max_upload_bytes))
        for i, f in enumerate(images)
    ]
    label_list = [lab.strip() for lab in labels] if labels else None
    info = await run_in_threadpool(datasets.create_from_files, name, files, label_list)
    return info.to_dict()


@router.delete("/{dataset_id}", response_model=DeletedOut)
async def delete_dataset(dataset_id: str, datasets: DatasetsDep) -> dict[str, str]:
    """Delete a dataset with its thumbnails, cached features and projections."""
    await run_in_threadpool(datasets.delete, dataset_id)
    return {"deleted": dataset_id}
