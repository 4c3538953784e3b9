"""Safe reading of dataset archives: a zip is checked whole before a single byte is kept.

Nothing in an archive decides where anything is written: members are read into memory under
limits (file count, total bytes, per-member compression ratio) and the store writes them under
names it chooses. A member with an absolute path, a ``..`` component, a link or a special file
type refuses the whole archive.
"""

from __future__ import annotations

import io
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

from server.errors import InvalidInputError, PayloadTooLargeError, UnsupportedMediaError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")
# Files that zip tools add on their own; they are skipped, not refused.
JUNK_NAMES = ("thumbs.db", "desktop.ini")
JUNK_DIRS = ("__macosx",)
UNLABELLED = "unlabelled"


@dataclass(frozen=True)
class ArchiveLimits:
    max_files: int
    max_total_bytes: int
    max_ratio: float


@dataclass(frozen=True)
class ArchiveMember:
    """One image found in an archive: its class (first folder) and its raw bytes."""

    path: str
    label: str
    data: bytes


def check_member_name(name: str) -> PurePosixPath:
    """The member's path as a relative POSIX path; refuses absolute paths, ``..`` and drive letters."""
    if "\x00" in name:
        raise InvalidInputError(
            f"Archive member {name!r} has a NUL byte in its name; the archive was refused."
        )
    normalised = name.replace("\\", "/")
    if normalised.startswith("/") or (len(normalised) > 1 and normalised[1] == ":"):
        raise InvalidInputError(f"Archive member {name!r} has an absolute path; the archive was refused.")
    path = PurePosixPath(normalised)
    if any(part == ".." for part in path.parts):
        raise InvalidInputError(
            f"Archive member {name!r} points outside the archive (..); the archive was refused."
        )
    return path


def _member_kind(info: zipfile.ZipInfo) -> str:
    """'dir', 'file', 'link' or 'special' from the Unix mode bits a zip may carry."""
    ftype = stat.S_IFMT(info.external_attr >> 16)  # 0 when the zip carries no Unix file type
    if ftype == stat.S_IFLNK:
        return "link"
    if info.is_dir() or ftype == stat.S_IFDIR:
        return "dir"
    if ftype not in (0, stat.S_IFREG):
        return "special"
    return "file"


def _is_junk(path: PurePosixPath) -> bool:
    parts = [p.lower() for p in path.parts]
    return any(p in JUNK_DIRS for p in parts[:-1]) or parts[-1].startswith(".") or parts[-1] in JUNK_NAMES


def _read_limited(zf: zipfile.ZipFile, info: zipfile.ZipInfo, budget: int) -> bytes:
    """A member's bytes, counting what really decompresses (declared sizes can lie)."""
    out = io.BytesIO()
    with zf.open(info) as fh:
        while True:
            chunk = fh.read(1 << 16)
            if not chunk:
                break
            out.write(chunk)
            if out.tell() > budget:
                raise PayloadTooLargeError(
                    "The archive decompresses to more bytes than the limit allows; it was refused."
                )
    return out.getvalue()


def read_zip_images(data: bytes, limits: ArchiveLimits) -> list[ArchiveMember]:
    """All image members of a zip (one folder per class), read under ``limits``.

    Raises UnsupportedMediaError for a non-zip, InvalidInputError for unsafe member names, links or
    an archive without images, and PayloadTooLargeError for too many files, too many bytes or a
    member whose compression ratio betrays a bomb. On any error nothing is returned.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        raise UnsupportedMediaError(
            "The upload is not a zip archive; send a .zip with one folder per class."
        ) from None
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files:
            raise PayloadTooLargeError(
                f"The archive has {len(infos):,} members; the limit is {limits.max_files:,}."
            )
        declared = 0
        for info in infos:
            check_member_name(info.filename)
            kind = _member_kind(info)
            if kind == "link":
                raise InvalidInputError(
                    f"Archive member {info.filename!r} is a symbolic link; the archive was refused."
                )
            if kind == "special":
                raise InvalidInputError(
                    f"Archive member {info.filename!r} is not a regular file; the archive was refused."
                )
            if info.flag_bits & 0x1:
                raise InvalidInputError(
                    f"Archive member {info.filename!r} is encrypted; the archive was refused."
                )
            declared += info.file_size
            ratio = info.file_size / max(info.compress_size, 1)
            if info.file_size > 1 << 20 and ratio > limits.max_ratio:
                raise PayloadTooLargeError(
                    f"Archive member {info.filename!r} expands {ratio:,.0f}x (limit {limits.max_ratio:,.0f}x); "
                    "the archive was refused as a possible archive bomb."
                )
        if declared > limits.max_total_bytes:
            raise PayloadTooLargeError(
                f"The archive expands to {declared:,} bytes; the limit is {limits.max_total_bytes:,} bytes."
            )
        candidates = []
        for info in infos:
            path = check_member_name(info.filename)
            if _member_kind(info) == "dir" or _is_junk(path) or path.suffix.lower() not in IMAGE_SUFFIXES:
                continue
            candidates.append((info, path))
        if not candidates:
            raise InvalidInputError("The archive holds no images (.png, .jpg, .webp, .bmp, .gif, .tif).")
        root = _common_root(path for _, path in candidates)
        members: list[ArchiveMember] = []
        budget = limits.max_total_bytes
        for info, path in candidates:
            raw = _read_limited(zf, info, budget)
            budget -= len(raw)
            parts = path.parts[len(root) :]
            label = parts[0] if len(parts) > 1 else UNLABELLED
            members.append(ArchiveMember(str(path), label, raw))
    return members


def _common_root(paths: Iterator[PurePosixPath]) -> tuple[str, ...]:
    """A single top folder that wraps the class folders (``mydata/cat/1.png``) is not a class."""
    dirs = [p.parts[:-1] for p in paths]
    if not dirs or any(len(d) < 2 for d in dirs):
        return ()
    first = dirs[0][0]
    return (first,) if all(d[0] == first for d in dirs) else ()
