"""Writing a dataset: uploads become items, a bad image refuses the whole upload, and a staged folder
is complete when yielded and gone when not moved away."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.datasets.archive import UNLABELLED, ArchiveLimits
from server.datasets.store import DatasetStore
from server.datasets.writer import (
    META,
    Item,
    items_from_files,
    make_thumbnail,
    natural_key,
    staged_dataset,
)
from server.errors import CorruptImageError, InvalidInputError, UnsupportedMediaError
from tests.datasets.test_store import png, zip_bytes

LIMITS = ArchiveLimits(max_files=10, max_total_bytes=1_000_000, max_ratio=100.0)


def test_labels_sort_naturally_so_digits_keep_their_index() -> None:
    assert sorted(["10", "2", "b", "A", "1"], key=natural_key) == ["1", "2", "10", "A", "b"]


def test_files_take_one_label_each_one_for_all_or_none() -> None:
    files = [("a.png", png(1)), ("b.png", png(2))]
    assert [i.label for i in items_from_files(files, ["x", " y "], LIMITS)] == ["x", "y"]
    assert [i.label for i in items_from_files(files, ["cats"], LIMITS)] == ["cats", "cats"]
    assert [i.label for i in items_from_files(files, None, LIMITS)] == [UNLABELLED, UNLABELLED]
    assert [i.label for i in items_from_files(files, ["", "z"], LIMITS)] == [UNLABELLED, "z"]
    with pytest.raises(InvalidInputError, match="3 labels for 2 files"):
        items_from_files(files, ["a", "b", "c"], LIMITS)
    with pytest.raises(InvalidInputError, match="No images"):
        items_from_files([], None, LIMITS)


def test_a_staged_dataset_is_complete_and_removed_unless_moved(tmp_path: Path) -> None:
    items = [Item("b", png(1), "one.png"), Item("a", png(2, color=True), "two.png")]
    with staged_dataset(
        tmp_path, "x", "X", "upload", items, max_image_bytes=10_000, max_image_pixels=10_000
    ) as folder:
        assert folder.parent == tmp_path and folder.name.startswith(".tmp-x-")
        meta = json.loads((folder / META).read_text())
        assert meta["classes"] == ["a", "b"] and [e["file"] for e in meta["images"]] == [
            "000000.png",
            "000001.png",
        ]
        with zipfile.ZipFile(folder / "images.zip") as zf:
            assert zf.read("000001.png") == png(2, color=True)  # stored as uploaded
        with zipfile.ZipFile(folder / "thumbs.zip") as zf:
            assert Image.open(io.BytesIO(zf.read("000000.png"))).size == (60, 60)
    assert list(tmp_path.iterdir()) == []  # not renamed into place: nothing is left


def test_tiny_images_get_crisp_enlarged_thumbnails() -> None:
    digit = Image.fromarray(np.eye(8, dtype=np.uint8) * 255)
    thumb = make_thumbnail(digit)
    assert thumb.size == (64, 64)
    assert set(np.unique(np.asarray(thumb))) == {0, 255}  # nearest neighbour: no blur
    assert make_thumbnail(Image.new("RGB", (640, 320))).size == (64, 32)


def test_a_bad_image_refuses_the_whole_upload_and_leaves_nothing(store: DatasetStore) -> None:
    noisy = np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noisy).save(buf, format="PNG")
    truncated = buf.getvalue()[: len(buf.getvalue()) // 2]
    with pytest.raises(CorruptImageError, match=r"b\.png"):
        store.create_from_files("bad", [("a.png", png(1)), ("b.png", truncated)])
    with pytest.raises(UnsupportedMediaError):
        store.create_from_zip("bad", zip_bytes({"c/a.png": b"this is text, not an image"}))
    assert not store.exists("bad")
    assert list(store.root.iterdir()) == []  # no temp folders left behind


def test_upload_limits_apply_to_many_files(tmp_path: Path) -> None:
    from server.errors import PayloadTooLargeError

    small = DatasetStore(tmp_path / "d", tmp_path / "c", limits=ArchiveLimits(2, 10_000, 100.0))
    with pytest.raises(PayloadTooLargeError):
        small.create_from_files("many", [(f"{i}.png", png(i)) for i in range(3)])
