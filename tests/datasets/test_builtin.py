"""The built-in datasets: stored from scikit-learn and scikit-image as the models expect, no network."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from server.datasets.builtin import BUILTINS
from server.datasets.store import DatasetStore


def test_digits_builtin_is_stored_as_digits_cnn_expects(store: DatasetStore) -> None:
    from sklearn.datasets import load_digits

    info = store.ensure_builtin("digits")
    assert info.num_images == 1797 and info.builtin
    assert info.classes == tuple(str(i) for i in range(10))
    assert sum(info.class_counts.values()) == 1797
    d = load_digits()
    img = np.asarray(store.load_image("digits", 5).convert("L"), dtype=np.float64)
    assert img.shape == (8, 8)
    np.testing.assert_allclose(img, np.round(d.images[5] / 16 * 255), atol=0)
    labels, classes = store.labels("digits")
    assert (np.asarray(classes)[labels] == d.target.astype(str)).all()
    thumb = Image.open(io.BytesIO(store.thumbnail_bytes("digits", 5)))
    assert thumb.size == (64, 64)


def test_other_builtins_need_no_network(store: DatasetStore) -> None:
    lfw = store.ensure_builtin("lfw_subset")
    assert lfw.class_counts == {"face": 100, "non-face": 100}
    photos = store.ensure_builtin("skimage_photos")
    assert photos.num_images >= 10 and len(photos.classes) >= 4
    for i in range(photos.num_images):
        assert max(Image.open(io.BytesIO(store.thumbnail_bytes("skimage_photos", i))).size) <= 64


def test_every_builtin_makes_labelled_png_images_it_can_decode() -> None:
    name, description, make = BUILTINS["lfw_subset"]
    items = make()
    assert name == "lfw_subset" and "faces" in description and len(items) == 200
    label, data, image = items[0]
    assert label == "face" and data[:4] == b"\x89PNG"
    assert Image.open(io.BytesIO(data)).size == image.size == (25, 25) and image.mode == "RGB"
    assert set(BUILTINS) == {"digits", "lfw_subset", "skimage_photos"}
