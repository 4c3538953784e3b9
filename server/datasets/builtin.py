"""The built-in datasets, bundled with scikit-learn and scikit-image (nothing is downloaded): the 8x8
digits, lfw_subset's faces and non-faces, and scikit-image's photos by category.

Each is a function returning ``(label, PNG bytes, the same image decoded)`` per image; the store
writes one on its first request.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from server.engine.imaging import to_rgb


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
