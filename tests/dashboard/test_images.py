"""Image ids: the bundled samples in static/samples/ and uploads kept by sha256."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from PIL import Image

from dashboard.images import (
    UnknownImageError,
    gallery,
    image_bytes,
    sample_png,
    samples_dir,
    store_upload,
    write_samples,
)


def test_gallery_samples_are_real_images():
    ids = [s.id for s in gallery()]
    assert "sample:chelsea" in ids and "sample:digit3" in ids
    cat = Image.open(io.BytesIO(sample_png("chelsea")))
    assert cat.size == (451, 300) and cat.mode == "RGB"
    digit = np.asarray(Image.open(io.BytesIO(sample_png("digit3"))))
    assert digit.shape == (8, 8)
    assert digit.max() > 200 and np.median(digit) < 64  # bright ink on a dark background


def test_uploads_are_kept_by_sha256_and_unknown_ids_say_why(tmp_path):
    image_id = store_upload(b"some bytes", tmp_path)
    assert image_id == "upload:" + hashlib.sha256(b"some bytes").hexdigest()
    assert image_bytes(image_id, tmp_path) == b"some bytes"
    with pytest.raises(UnknownImageError, match="upload it again"):
        image_bytes("upload:" + "0" * 64, tmp_path)
    with pytest.raises(UnknownImageError, match="not an image id"):
        image_bytes("../../etc/passwd", tmp_path)
    with pytest.raises(UnknownImageError, match="no bundled sample"):
        image_bytes("sample:nothing", tmp_path)


def test_the_bundled_samples_hold_the_packages_pixels(tmp_path):
    """static/samples/ is what scikit-image and scikit-learn give (``python -m dashboard.images``)."""
    written = write_samples(tmp_path)
    assert {p.name for p in written} == {f"{s.id.removeprefix('sample:')}.png" for s in gallery()}
    for path in written:
        bundled = np.asarray(Image.open(io.BytesIO(sample_png(path.stem))))
        np.testing.assert_array_equal(bundled, np.asarray(Image.open(path)), err_msg=path.name)
    assert sorted(p.name for p in samples_dir().glob("*.png")) == sorted(p.name for p in written)
