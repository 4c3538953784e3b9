"""DatasetStore: labelled image datasets stored under ``settings.datasets_dir``, one folder each.

Layout of a dataset ``<id>``::

    datasets_dir/<id>/meta.json     name, source, classes, content hash, one entry per image
    datasets_dir/<id>/images.zip    the uploaded bytes as they came (validated as images), stored
                                    uncompressed as 000000.png, 000001.jpg, ...
    datasets_dir/<id>/thumbs.zip    000000.png ...: thumbnails of at most THUMB_SIZE pixels a side
    cache_dir/datasets/<id>/...     derived data (features, projections); deleted with the dataset

Images are packed into two uncompressed zips rather than thousands of small files: creating a
file costs ~1.5 ms on this machine's disk, so the 1,797 digits and their thumbnails took 2-6 s as
files and take 0.5 s packed; reads by index stay random-access.

A dataset is written into a hidden temporary folder (:mod:`server.datasets.writer`) and renamed
into place only when complete, so a refused or interrupted upload leaves nothing behind and a
listed dataset is always whole. The built-ins (:mod:`server.datasets.builtin`) are written on
their first request.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import threading
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from server.datasets.archive import ArchiveLimits
from server.datasets.builtin import BUILTINS
from server.datasets.writer import META, Item, items_from_files, items_from_zip, staged_dataset
from server.engine.imaging import to_rgb
from server.errors import ConflictError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from server.cache_budget import CacheBudget

_ID_RE = re.compile(r"[^a-z0-9_-]+")


@dataclass(frozen=True)
class ImageRecord:
    """One image of a dataset: its position, stored file name and label."""

    index: int
    file: str
    label: str
    label_index: int


@dataclass(frozen=True)
class DatasetInfo:
    """What listing a dataset shows: size, class balance and the hash of its content."""

    id: str
    name: str
    source: str  # "builtin" or "upload"
    num_images: int
    classes: tuple[str, ...]
    class_counts: dict[str, int]
    content_hash: str
    created: float
    description: str = ""
    builtin: bool = False
    records: tuple[ImageRecord, ...] = field(default=(), repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "source": self.source,
            "builtin": self.builtin,
            "description": self.description,
            "num_images": self.num_images,
            "num_classes": len(self.classes),
            "classes": list(self.classes),
            "class_counts": dict(self.class_counts),
            "content_hash": self.content_hash,
            "created": self.created,
        }


def dataset_id_for(name: str) -> str:
    """A file-system-safe id from a display name ("My cats!" -> "my-cats")."""
    slug = _ID_RE.sub("-", name.strip().lower()).strip("-_")[:64]
    if not slug:
        raise InvalidInputError("A dataset needs a name with at least one letter or digit.")
    return slug


class DatasetStore:
    """Create, list, read and delete datasets on disk; safe for concurrent use in one process."""

    def __init__(
        self,
        datasets_dir: Path,
        cache_dir: Path,
        *,
        limits: ArchiveLimits | None = None,
        max_image_bytes: int = 20 * 1024 * 1024,
        max_image_pixels: int = 50_000_000,
        budget: CacheBudget | None = None,
    ) -> None:
        self.budget = budget  # counts the derived caches under cache_root (deleting a dataset uncounts them)
        self.root = Path(datasets_dir)
        self.cache_root = Path(cache_dir) / "datasets"
        self.limits = limits or ArchiveLimits(
            max_files=100_000, max_total_bytes=500 * 1024 * 1024, max_ratio=200.0
        )
        self.max_image_bytes = max_image_bytes
        self.max_image_pixels = max_image_pixels
        self._lock = threading.RLock()
        self._info_cache: dict[str, tuple[float, DatasetInfo]] = {}

    @classmethod
    def from_settings(cls, settings: Any, budget: CacheBudget | None = None) -> DatasetStore:
        return cls(
            settings.datasets_dir,
            settings.cache_dir,
            limits=ArchiveLimits(
                max_files=settings.max_archive_files,
                max_total_bytes=settings.max_archive_bytes,
                max_ratio=settings.max_archive_ratio,
            ),
            max_image_bytes=settings.max_upload_bytes,
            max_image_pixels=settings.max_image_pixels,
            budget=budget,
        )

    # --- reading ------------------------------------------------------------------------------------

    def list(self) -> list[DatasetInfo]:
        """Every stored dataset (built-ins are created on first use), sorted by id."""
        out = []
        if self.root.is_dir():
            for d in sorted(self.root.iterdir()):
                if d.name.startswith(".") or not (d / META).is_file():
                    continue
                out.append(self._read_info(d.name))
        return out

    def exists(self, dataset_id: str) -> bool:
        return self._dir(dataset_id).joinpath(META).is_file()

    def get(self, dataset_id: str) -> DatasetInfo:
        """A dataset's info; a built-in is created on first request. Unknown ids -> NotFoundError."""
        if not self.exists(dataset_id) and dataset_id in BUILTINS:
            return self.ensure_builtin(dataset_id)
        if not self.exists(dataset_id):
            known = [d.id for d in self.list()] + [b for b in BUILTINS]
            raise NotFoundError.with_suggestions("dataset", dataset_id, dict.fromkeys(known))
        return self._read_info(dataset_id)

    def images(self, dataset_id: str) -> list[ImageRecord]:
        """All images of a dataset in their stored order."""
        return list(self.get(dataset_id).records)

    def labels(self, dataset_id: str) -> tuple[np.ndarray, tuple[str, ...]]:
        """(label index per image, class names) - class names are sorted naturally."""
        info = self.get(dataset_id)
        return np.array([r.label_index for r in info.records], dtype=np.int64), info.classes

    def image_bytes(self, dataset_id: str, index: int) -> tuple[bytes, str]:
        """The stored bytes of one image as uploaded, and its media type."""
        rec = self._record(dataset_id, index)
        suffix = rec.file.rsplit(".", 1)[-1]
        media = {"jpg": "image/jpeg", "tif": "image/tiff"}.get(suffix, f"image/{suffix}")
        return self._read_member(dataset_id, "images.zip", rec.file), media

    def thumbnail_bytes(self, dataset_id: str, index: int) -> bytes:
        """PNG thumbnail (at most THUMB_SIZE a side) of one image."""
        self._record(dataset_id, index)
        return self._read_member(dataset_id, "thumbs.zip", f"{index:06d}.png")

    def load_image(self, dataset_id: str, index: int) -> Image.Image:
        """One stored image as RGB PIL."""
        data, _ = self.image_bytes(dataset_id, index)
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            return to_rgb(img)

    def iter_images(self, dataset_id: str) -> Iterator[tuple[ImageRecord, Image.Image]]:
        """(record, RGB PIL image) for every image, in order; for feature extraction and audits."""
        info = self.get(dataset_id)
        with zipfile.ZipFile(self._dir(dataset_id) / "images.zip") as zf:
            for rec in info.records:
                with Image.open(io.BytesIO(zf.read(rec.file))) as img:
                    img.load()
                    yield rec, to_rgb(img)

    def images_at(self, dataset_id: str, indices: Sequence[int]) -> Iterator[Image.Image]:
        """The images at ``indices``, in that order: one pass over the archive when they are all of them."""
        if list(indices) == list(range(self.get(dataset_id).num_images)):
            yield from (img for _rec, img in self.iter_images(dataset_id))
        else:
            yield from (self.load_image(dataset_id, i) for i in indices)

    def _read_member(self, dataset_id: str, archive: str, member: str) -> bytes:
        with zipfile.ZipFile(self._dir(dataset_id) / archive) as zf:
            return zf.read(member)

    def cache_dir(self, dataset_id: str) -> Path:
        """Where derived data of this dataset lives; removed when the dataset is deleted."""
        return self.cache_root / dataset_id

    # --- writing ------------------------------------------------------------------------------------

    def create_from_zip(self, name: str, data: bytes) -> DatasetInfo:
        """A dataset from a zip with one folder per class; a bad archive is refused whole."""
        dataset_id = self._free_id(name)
        return self._write(dataset_id, name, "upload", items_from_zip(data, self.limits))

    def create_from_files(
        self, name: str, files: Sequence[tuple[str, bytes]], labels: Sequence[str] | None = None
    ) -> DatasetInfo:
        """A dataset from many image files at once; ``labels`` gives each file's class (default: unlabelled)."""
        dataset_id = self._free_id(name)
        return self._write(dataset_id, name, "upload", items_from_files(files, labels, self.limits))

    def delete(self, dataset_id: str) -> None:
        """Remove a dataset and every cache derived from it. Built-ins cannot be deleted."""
        info = self.get(dataset_id)
        if info.builtin:
            raise ConflictError(f"'{dataset_id}' is a built-in dataset and cannot be deleted.")
        with self._lock:
            trash = self.root / f".trash-{dataset_id}-{uuid.uuid4().hex[:8]}"
            self._dir(dataset_id).rename(trash)  # atomic: the dataset disappears from listings at once
            self._info_cache.pop(dataset_id, None)
            shutil.rmtree(trash, ignore_errors=True)
            if self.budget is not None:
                self.budget.remove_tree(self.cache_dir(dataset_id))
            else:
                shutil.rmtree(self.cache_dir(dataset_id), ignore_errors=True)

    def ensure_builtin(self, dataset_id: str) -> DatasetInfo:
        """Create the built-in ``dataset_id`` (digits, lfw_subset, skimage_photos) if it is not stored yet."""
        if dataset_id not in BUILTINS:
            raise NotFoundError.with_suggestions("built-in dataset", dataset_id, BUILTINS)
        with self._lock:
            if self.exists(dataset_id):
                return self._read_info(dataset_id)
            name, description, make = BUILTINS[dataset_id]
            items = [Item(label, data, f"{i}", image) for i, (label, data, image) in enumerate(make())]
            return self._write(dataset_id, name, "builtin", items, description=description)

    def ensure_builtins(self) -> list[DatasetInfo]:
        return [self.ensure_builtin(b) for b in BUILTINS]

    # --- internals ----------------------------------------------------------------------------------

    def _dir(self, dataset_id: str) -> Path:
        valid = _ID_RE.sub("-", dataset_id.strip().lower()).strip("-_")[:64] == dataset_id
        if not dataset_id or not valid or dataset_id.startswith("."):  # no dataset can have this id
            raise NotFoundError(f"Unknown dataset '{dataset_id}'.")
        return self.root / dataset_id

    def _free_id(self, name: str) -> str:
        dataset_id = dataset_id_for(name)
        if dataset_id in BUILTINS or self.exists(dataset_id):
            raise ConflictError(
                f"A dataset called '{dataset_id}' already exists; choose another name or delete it."
            )
        return dataset_id

    def _record(self, dataset_id: str, index: int) -> ImageRecord:
        records = self.get(dataset_id).records
        if not 0 <= index < len(records):
            raise NotFoundError(
                f"Dataset '{dataset_id}' has images 0..{len(records) - 1}; there is no image {index}."
            )
        return records[index]

    def _read_info(self, dataset_id: str) -> DatasetInfo:
        path = self._dir(dataset_id) / META
        mtime = path.stat().st_mtime
        cached = self._info_cache.get(dataset_id)
        if cached and cached[0] == mtime:
            return cached[1]
        meta = json.loads(path.read_text())
        classes = tuple(meta["classes"])
        index_of = {c: i for i, c in enumerate(classes)}
        records = tuple(
            ImageRecord(i, e["file"], e["label"], index_of[e["label"]]) for i, e in enumerate(meta["images"])
        )
        counts = Counter(r.label for r in records)
        info = DatasetInfo(
            id=meta["id"],
            name=meta["name"],
            source=meta["source"],
            num_images=len(records),
            classes=classes,
            class_counts={c: counts.get(c, 0) for c in classes},
            content_hash=meta["content_hash"],
            created=meta["created"],
            description=meta.get("description", ""),
            builtin=meta["source"] == "builtin",
            records=records,
        )
        self._info_cache[dataset_id] = (mtime, info)
        return info

    def _write(
        self, dataset_id: str, name: str, source: str, items: list[Item], description: str = ""
    ) -> DatasetInfo:
        """Write the dataset into a temporary folder, then rename it into place (nothing is left on failure)."""
        with (
            staged_dataset(
                self.root,
                dataset_id,
                name,
                source,
                items,
                max_image_bytes=self.max_image_bytes,
                max_image_pixels=self.max_image_pixels,
                description=description,
            ) as tmp,
            self._lock,
        ):
            if self.exists(dataset_id):
                raise ConflictError(f"A dataset called '{dataset_id}' already exists; choose another name.")
            shutil.rmtree(self.cache_dir(dataset_id), ignore_errors=True)  # stale derived data of a namesake
            tmp.rename(self.root / dataset_id)
        return self._read_info(dataset_id)
