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

A dataset is written into a hidden temporary folder and renamed into place only when complete,
so a refused or interrupted upload leaves nothing behind and a listed dataset is always whole.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from server.datasets.archive import UNLABELLED, ArchiveLimits, read_zip_images
from server.engine.imaging import decode_image, to_rgb
from server.errors import ConflictError, ConvLensError, InvalidInputError, NotFoundError, PayloadTooLargeError

THUMB_SIZE = 64
META = "meta.json"
_ID_RE = re.compile(r"[^a-z0-9_-]+")
_FORMAT_SUFFIX = {
    "JPEG": ".jpg",
    "MPO": ".jpg",
    "PNG": ".png",
    "WEBP": ".webp",
    "BMP": ".bmp",
    "GIF": ".gif",
    "TIFF": ".tif",
}


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


def natural_key(label: str) -> tuple[int, int | str]:
    """Sort "2" before "10" and numbers before words, so digits keep label_index == digit."""
    return (0, int(label)) if label.isdigit() else (1, label.lower())


def dataset_id_for(name: str) -> str:
    """A file-system-safe id from a display name ("My cats!" -> "my-cats")."""
    slug = _ID_RE.sub("-", name.strip().lower()).strip("-_")[:64]
    if not slug:
        raise InvalidInputError("A dataset needs a name with at least one letter or digit.")
    return slug


@dataclass(frozen=True)
class _Item:
    label: str
    data: bytes
    source_name: str
    image: Image.Image | None = None  # already decoded (built-ins we encoded ourselves)


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
    ) -> None:
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
    def from_settings(cls, settings: Any) -> DatasetStore:
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
        members = read_zip_images(data, self.limits)
        items = [_Item(m.label, m.data, m.path) for m in members]
        return self._write(dataset_id, name, "upload", items)

    def create_from_files(
        self, name: str, files: Sequence[tuple[str, bytes]], labels: Sequence[str] | None = None
    ) -> DatasetInfo:
        """A dataset from many image files at once; ``labels`` gives each file's class (default: unlabelled)."""
        dataset_id = self._free_id(name)
        if not files:
            raise InvalidInputError("No images were sent; send at least one image file.")
        if labels is not None and len(labels) not in (1, len(files)):
            raise InvalidInputError(
                f"Got {len(labels)} labels for {len(files)} files; send one label or one per file."
            )
        if len(files) > self.limits.max_files:
            raise PayloadTooLargeError(f"{len(files):,} files exceed the limit of {self.limits.max_files:,}.")
        total = sum(len(b) for _, b in files)
        if total > self.limits.max_total_bytes:
            raise PayloadTooLargeError(
                f"{total:,} bytes exceed the limit of {self.limits.max_total_bytes:,} bytes."
            )
        label_list = list(labels) if labels else [UNLABELLED]
        if len(label_list) == 1:
            label_list = label_list * len(files)
        items = [
            _Item((lab or UNLABELLED).strip() or UNLABELLED, data, fname)
            for (fname, data), lab in zip(files, label_list, strict=True)
        ]
        return self._write(dataset_id, name, "upload", items)

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
            shutil.rmtree(self.cache_dir(dataset_id), ignore_errors=True)

    def ensure_builtin(self, dataset_id: str) -> DatasetInfo:
        """Create the built-in ``dataset_id`` (digits, lfw_subset, skimage_photos) if it is not stored yet."""
        if dataset_id not in BUILTINS:
            raise NotFoundError.with_suggestions("built-in dataset", dataset_id, BUILTINS)
        with self._lock:
            if self.exists(dataset_id):
                return self._read_info(dataset_id)
            name, description, make = BUILTINS[dataset_id]
            items = [_Item(label, data, f"{i}", image) for i, (label, data, image) in enumerate(make())]
            return self._write(dataset_id, name, "builtin", items, description=description)

    def ensure_builtins(self) -> list[DatasetInfo]:
        return [self.ensure_builtin(b) for b in BUILTINS]

    # --- internals ----------------------------------------------------------------------------------

    def _dir(self, dataset_id: str) -> Path:
        if not dataset_id or dataset_id != dataset_id_for(dataset_id) or dataset_id.startswith("."):
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
        self, dataset_id: str, name: str, source: str, items: list[_Item], description: str = ""
    ) -> DatasetInfo:
        """Validate every image, write images + thumbnails into a temp folder, then rename it into place."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{dataset_id}-{uuid.uuid4().hex[:8]}"
        try:
            tmp.mkdir(parents=True)
            entries = []
            digest = hashlib.sha256()
            with (
                zipfile.ZipFile(tmp / "images.zip", "w", zipfile.ZIP_STORED) as images,
                zipfile.ZipFile(tmp / "thumbs.zip", "w", zipfile.ZIP_STORED) as thumbs,
            ):
                for i, item in enumerate(items):
                    suffix, thumb = _validated(item, self.max_image_bytes, self.max_image_pixels)
                    fname = f"{i:06d}{suffix}"
                    images.writestr(fname, item.data)
                    buf = io.BytesIO()
                    thumb.save(buf, format="PNG", compress_level=1)
                    thumbs.writestr(f"{i:06d}.png", buf.getvalue())
                    entries.append({"file": fname, "label": item.label})
                    digest.update(item.label.encode() + b"\0" + hashlib.sha256(item.data).digest())
            classes = sorted({e["label"] for e in entries}, key=natural_key)
            meta = {
                "id": dataset_id,
                "name": name,
                "source": source,
                "description": description,
                "created": time.time(),
                "content_hash": digest.hexdigest()[:32],
                "classes": classes,
                "images": entries,
            }
            (tmp / META).write_text(json.dumps(meta))
            with self._lock:
                if self.exists(dataset_id):
                    raise ConflictError(
                        f"A dataset called '{dataset_id}' already exists; choose another name."
                    )
                shutil.rmtree(
                    self.cache_dir(dataset_id), ignore_errors=True
                )  # stale derived data of a namesake
                tmp.rename(self.root / dataset_id)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        return self._read_info(dataset_id)


def _validated(item: _Item, max_bytes: int, max_pixels: int) -> tuple[str, Image.Image]:
    """(file suffix, thumbnail) of an item; a bad image refuses the whole upload, naming the file."""
    if item.image is not None:
        return ".png", make_thumbnail(item.image)
    try:
        img = decode_image(item.data, max_bytes=max_bytes, max_pixels=max_pixels)
    except ConvLensError as exc:  # keeps its status (413, 415, 422), names the file
        raise type(exc)(f"{item.source_name}: {exc.message}") from None
    with Image.open(io.BytesIO(item.data)) as probe:
        suffix = _FORMAT_SUFFIX.get(probe.format or "", ".png")
    return suffix, make_thumbnail(img)


def make_thumbnail(img: Image.Image, size: int = THUMB_SIZE) -> Image.Image:
    """At most ``size`` a side; tiny images (8x8 digits) are enlarged with crisp pixels."""
    w, h = img.size
    if max(w, h) < size:
        f = max(1, size // max(w, h))
        return img.resize((w * f, h * f), Image.NEAREST)
    thumb = img.copy()
    thumb.thumbnail((size, size), Image.BILINEAR)
    return thumb


# --- built-ins (bundled with scikit-learn and scikit-image; nothing is downloaded) -----------------------


def _png(arr: np.ndarray) -> tuple[bytes, Image.Image]:
    img = Image.fromarray(arr)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue(), to_rgb(img)


Builtin = list[tuple[str, bytes, Image.Image]]  # (label, PNG bytes, the same image decoded)


def _digits() -> Builtin:
    """scikit-learn's 1,797 8x8 digits, bright ink on dark (value/16*255), as digits_cnn expects."""
    from sklearn.datasets import load_digits

    d = load_digits()
    imgs = np.clip(np.round(d.images / 16.0 * 255.0), 0, 255).astype(np.uint8)
    return [(str(int(t)), *_png(img)) for img, t in zip(imgs, d.target, strict=True)]


def _lfw_subset() -> Builtin:
    """scikit-image's lfw_subset: 100 faces then 100 non-faces, 25x25 grayscale."""
    from skimage import data

    imgs = np.clip(np.round(data.lfw_subset() * 255.0), 0, 255).astype(np.uint8)
    return [("face" if i < 100 else "non-face", *_png(img)) for i, img in enumerate(imgs)]


SKIMAGE_PHOTOS: dict[str, str] = {
    "astronaut": "people", "camera": "people",
    "chelsea": "animals", "horse": "animals",
    "brick": "textures", "grass": "textures", "gravel": "textures",
    "clock": "objects", "coffee": "objects", "coins": "objects", "rocket": "objects",
    "hubble_deep_field": "science", "immunohistochemistry": "science", "microaneurysms": "science",
    "moon": "science", "retina": "science", "cell": "science",
    "page": "documents", "text": "documents",
}  # fmt: skip


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    if arr.dtype == bool:
        return arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        hi = 255.0 if float(arr.max()) > 1.0 else 1.0
        return np.clip(arr / hi * 255.0, 0, 255).astype(np.uint8)
    return arr


def _skimage_photos() -> Builtin:
    """The photos bundled inside scikit-image's wheel, labelled by a coarse category."""
    from skimage import data

    out = []
    for fn_name, category in SKIMAGE_PHOTOS.items():
        loader: Callable[[], np.ndarray] | None = getattr(data, fn_name, None)
        if loader is None:
            continue
        arr = _to_uint8(loader())
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = np.asarray(Image.fromarray(arr, "RGBA").convert("RGB"))
        out.append((category, *_png(arr)))
    return out


BUILTINS: dict[str, tuple[str, str, Callable[[], Builtin]]] = {
    "digits": (
        "digits",
        "scikit-learn's 1,797 labelled 8x8 handwritten digits (bright ink on dark).",
        _digits,
    ),
    "lfw_subset": ("lfw_subset", "scikit-image's 200 25x25 crops: 100 faces and 100 non-faces.", _lfw_subset),
    "skimage_photos": (
        "skimage_photos",
        "The photos bundled with scikit-image, by category.",
        _skimage_photos,
    ),
}
