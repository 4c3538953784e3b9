"""Response schemas of the dataset resources."""

from __future__ import annotations

from pydantic import BaseModel


class DatasetOut(BaseModel):
    id: str
    name: str
    source: str
    builtin: bool
    description: str
    num_images: int
    num_classes: int
    classes: list[str]
    class_counts: dict[str, int]
    content_hash: str
    created: float


class ImageOut(BaseModel):
    index: int
    label: str
    label_index: int
    image_url: str
    thumbnail_url: str


class DatasetDetailOut(DatasetOut):
    images: list[ImageOut]
    offset: int
    limit: int


class DeletedOut(BaseModel):
    deleted: str
