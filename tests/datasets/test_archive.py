"""Safe archive extraction: traversal, absolute paths, links and bombs refuse the whole archive."""

from __future__ import annotations

import io
import stat
import zipfile
from pathlib import Path

import pytest

from server.datasets.archive import ArchiveLimits, read_zip_images
from server.datasets.store import DatasetStore
from server.errors import InvalidInputError, PayloadTooLargeError
from tests.datasets.test_store import png, zip_bytes

LIMITS = ArchiveLimits(max_files=1000, max_total_bytes=5 * 1024 * 1024, max_ratio=200.0)


def zip_with_symlink(target: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("cls/ok.png", png(3))
        info = zipfile.ZipInfo("cls/link.png")
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, target)
    return buf.getvalue()


@pytest.mark.parametrize(
    "member",
    [
        "../evil.png",
        "cls/../../evil.png",
        "/abs/evil.png",
        "C:/evil.png",
        "..\\evil.png",
        "cls\\..\\..\\evil.png",
    ],
)
def test_traversal_and_absolute_members_refuse_the_archive(tmp_path: Path, member: str) -> None:
    store = DatasetStore(tmp_path / "data" / "datasets", tmp_path / "data" / "cache")
    data = zip_bytes({"cls/ok.png": png(1), member: png(2)})
    with pytest.raises(InvalidInputError, match="refused"):
        store.create_from_zip("evil", data)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    assert written in ([], ["data", "data/datasets"])  # nothing of the archive anywhere
    assert not (tmp_path / "evil.png").exists() and not Path("/abs/evil.png").exists()


def test_symlink_members_refuse_the_archive(tmp_path: Path) -> None:
    store = DatasetStore(tmp_path / "d", tmp_path / "c")
    with pytest.raises(InvalidInputError, match="symbolic link"):
        store.create_from_zip("links", zip_with_symlink("/etc/passwd"))
    assert not store.exists("links") and not (tmp_path / "d").exists()


def test_an_archive_bomb_is_stopped_by_the_ratio_limit() -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("cls/bomb.png", b"\0" * (20 * 1024 * 1024))  # 20 MiB of zeros -> ~20 KiB
    assert len(buf.getvalue()) < 100_000
    with pytest.raises(PayloadTooLargeError, match="bomb"):
        read_zip_images(buf.getvalue(), LIMITS)


def test_total_size_and_file_count_limits() -> None:
    many = zip_bytes({f"c/{i}.png": png(i % 250) for i in range(30)})
    with pytest.raises(PayloadTooLargeError, match="members"):
        read_zip_images(many, ArchiveLimits(max_files=10, max_total_bytes=10**9, max_ratio=200.0))
    with pytest.raises(PayloadTooLargeError, match="expands"):
        read_zip_images(many, ArchiveLimits(max_files=100, max_total_bytes=1000, max_ratio=200.0))


def test_lying_sizes_are_caught_while_decompressing() -> None:
    """A member whose header claims a small size cannot smuggle more bytes past the limit."""
    data = bytearray(zip_bytes({"c/a.png": png(1), "c/b.png": b"\0" * 400_000}))
    members = read_zip_images(bytes(data), LIMITS)  # honest archive: fine... (b.png is not decoded here)
    assert {m.label for m in members} == {"c"}
    with pytest.raises(PayloadTooLargeError):
        read_zip_images(bytes(data), ArchiveLimits(max_files=10, max_total_bytes=300_000, max_ratio=10_000.0))


def test_not_a_zip_and_empty_archive() -> None:
    from server.errors import UnsupportedMediaError

    with pytest.raises(UnsupportedMediaError):
        read_zip_images(b"PK not really", LIMITS)
    with pytest.raises(InvalidInputError, match="no images"):
        read_zip_images(zip_bytes({"notes.txt": b"hi"}), LIMITS)
