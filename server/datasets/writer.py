"""Writing a dataset: uploads turned into items, every image validated, packed with its thumbnail,
and ``meta.json`` - into a hidden temporary folder that the store renames into place when complete.

A refused image refuses the whole upload (naming the file) and leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import time
import uuid
import zipfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from server.datasets.archive import UNLABELLED, ArchiveLimits, read_zip_images
from server.engine.imaging import decode_image
from server.errors import ConvLensError, InvalidInputError, PayloadTooLargeError

THUMB_SIZE = 64
META = "meta.json"
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
class Item:
    """One image to store: its class, its bytes as they came, and where it came from (for errors)."""

    label: str
    data: bytes
    source_name: str
    image: Image.Image | None = None  # already decoded (built-ins we encoded ourselves)


def natural_key(label: str) -> tuple[int, int | str]:
    """Sort "2" before "10" and numbers before words, so digits keep label_index == digit."""
    return (0, int(label)) if label.isdigit() else (1, label.lower())


def items_from_zip(data: bytes, limits: ArchiveLimits) -> list[Item]:
    """The images of a zip with one folder per class; a bad archive is refused whole."""
    return [Item(m.label, m.data, m.path) for m in read_zip_images(data, limits)]


def items_from_files(
    files: Sequence[tuple[str, bytes]], labels: Sequence[str] | None, limits: ArchiveLimits
) -> list[Item]:
    """Many image files at once; ``labels`` gives one class for all, or one per file (default: unlabelled)."""
    if not files:
        raise InvalidInputError("No images were sent; send at least one image file.")
    if labels is not None and len(labels) not in (1, len(files)):
        raise InvalidInputError(
            f"Got {len(labels)} labels for {len(files)} files; send one label or one per file."
        )
    if len(files) > limits.max_files:
        raise PayloadTooLargeError(f"{len(files):,} files exceed the limit of {limits.max_files:,}.")
    total = sum(len(b) for _, b in files)
    if total > limits.max_total_bytes:
        raise PayloadTooLargeError(f"{total:,} bytes exceed the limit of {limits.max_total_bytes:,} bytes.")
    label_list = list(labels) if labels else [UNLABELLED]
    if len(label_list) == 1:
        label_list = label_list * len(files)
    return [
        Item((lab or UNLABELLED).strip() or UNLABELLED, data, fname)
        for (fname, data), lab in zip(files, label_list, strict=True)
    ]


@contextmanager
def staged_dataset(
    root: Path,
    dataset_id: str,
    name: str,
    source: str,
    items: list[Item],
    *,
    max_image_bytes: int,
    max_image_pixels: int,
    description: str = "",
) -> Iterator[Path]:
    """Validate every image and write images, thumbnails and ``meta.json`` into a hidden temporary
    folder under ``root``; yield it for the caller to rename into place. Whatever is still there on
    exit (a refused image, a clash, an interruption) is removed."""
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".tmp-{dataset_id}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        entries = []
        digest = hashlib.sha256()
        with (
            zipfile.ZipFile(tmp / "images.zip", "w", zipfile.ZIP_STORED) as images,
            zipfile.ZipFile(tmp / "thumbs.zip", "w", zipfile.ZIP_STORED) as thumbs,
        ):
            for i, item in enumerate(items):
                suffix, thumb = validated(item, max_image_bytes, max_image_pixels)
                fname = f"{i:06d}{suffix}"
                images.writestr(fname, item.data)
                buf = io.BytesIO()
                thumb.save(buf, format="PNG", compress_level=1)
                thumbs.writestr(f"{i:06d}.png", buf.getvalue())
                entries.append({"file": fname, "label": item.label})
                digest.update(item.label.encode() + b"\0" + hashlib.sha256(item.data).digest())
        meta = {
            "id": dataset_id,
            "name": name,
            "source": source,
            "description": description,
            "created": time.time(),
            "content_hash": digest.hexdigest()[:32],
            "classes": sorted({e["label"] for e in entries}, key=natural_key),
            "images": entries,
        }
        (tmp / META).write_text(json.dumps(meta))
        yield tmp
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def validated(item: Item, max_bytes: int, max_pixels: int) -> tuple[str, Image.Image]:
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
