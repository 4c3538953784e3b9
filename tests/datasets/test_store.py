"""DatasetStore: uploads, listing across restarts, reading by index, deletion with caches, unknown ids."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from server.datasets.store import DatasetStore
from server.errors import ConflictError, NotFoundError


def png(value: int, size: int = 12, color: bool = False) -> bytes:
    arr = np.full((size, size, 3) if color else (size, size), value, dtype=np.uint8)
    arr[0, 0] = 255 - value  # not constant, so decoders and features see structure
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_upload_lists_counts_and_survives_restart(store: DatasetStore, tmp_path: Path) -> None:
    data = zip_bytes(
        {
            "pets/cat/a.png": png(10),
            "pets/cat/b.png": png(20),
            "pets/dog/c.png": png(200, color=True),
            "pets/__MACOSX/._junk": b"junk",
            "pets/README.txt": b"notes",
        }
    )
    info = store.create_from_zip("My Pets!", data)
    assert info.id == "my-pets"
    assert info.class_counts == {"cat": 2, "dog": 1}
    reopened = DatasetStore(tmp_path / "data" / "datasets", tmp_path / "data" / "cache")
    listed = {d.id: d for d in reopened.list()}
    assert listed["my-pets"].class_counts == {"cat": 2, "dog": 1}
    assert listed["my-pets"].content_hash == info.content_hash
    assert reopened.load_image("my-pets", 2).size == (12, 12)
    data_back, media = reopened.image_bytes("my-pets", 0)
    assert media == "image/png" and data_back == png(10)  # stored as uploaded


def test_files_upload_with_labels_and_name_conflict(store: DatasetStore) -> None:
    info = store.create_from_files("few", [("a.png", png(1)), ("b.png", png(2))], labels=["x", "y"])
    assert info.class_counts == {"x": 1, "y": 1}
    with pytest.raises(ConflictError):
        store.create_from_files("few", [("a.png", png(1))])
    with pytest.raises(ConflictError):
        store.create_from_files("digits", [("a.png", png(1))])


def test_delete_takes_the_cache_with_it(store: DatasetStore) -> None:
    store.create_from_files("gone", [("a.png", png(1)), ("b.png", png(2))])
    cache = store.cache_dir("gone") / "features"
    cache.mkdir(parents=True)
    (cache / "x.npz").write_bytes(b"cached")
    store.delete("gone")
    assert not store.exists("gone")
    assert not store.cache_dir("gone").exists()
    assert [p.name for p in store.root.iterdir()] == []
    with pytest.raises(NotFoundError):
        store.get("gone")


def test_builtins_cannot_be_deleted_and_unknown_ids_suggest(store: DatasetStore) -> None:
    store.ensure_builtin("lfw_subset")
    with pytest.raises(ConflictError):
        store.delete("lfw_subset")
    with pytest.raises(NotFoundError, match="lfw_subset"):
        store.get("lfw_subsett")
    with pytest.raises(NotFoundError):
        store.get("../etc")
    with pytest.raises(NotFoundError):
        store.thumbnail_bytes("lfw_subset", 200)
