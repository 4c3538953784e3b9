"""Input images and the ids the URL carries for them.

An image id is one of
- ``sample:<name>``: a bundled real photo from scikit-image (``sample:chelsea``) or a scikit-learn digit
  (``sample:digit3``, 8x8, bright ink on dark as ``digits_cnn`` expects), kept as PNG files in
  ``static/samples/`` (lossless, the packages' pixels exactly; ``python -m dashboard.images`` writes them
  again from those packages, and a test checks that the files still hold those pixels).
- ``upload:<sha256>``: an uploaded file, stored by the dashboard under
  ``<data_dir>/dashboard/uploads/<sha256>`` (the same sha256 the API reports as ``image_sha256``), so that a
  copied link reopens the same image for as long as that data dir is kept.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from dashboard.settings import get_settings


class UnknownImageError(LookupError):
    """An image id that names no sample and no stored upload."""


@dataclass(frozen=True)
class Sample:
    id: str
    title: str
    group: str  # "photo" or "digit"


PHOTOS = {  # skimage.data function -> title; the ImageNet models know these subjects
    "chelsea": "Chelsea the cat",
    "coffee": "Coffee",
    "rocket": "Rocket",
    "camera": "Cameraman",
    "astronaut": "Astronaut",
}
DIGITS = {f"digit{d}": f"Digit {d}" for d in range(10)}

_UPLOAD_ID = re.compile(r"^upload:([0-9a-f]{64})$")
_LATENT_ID = re.compile(r"^latent:([0-9]{1,10})$")
MAX_SEED = 2**32 - 1  # the API's bound on GAN seeds


def latent_id(seed: int) -> str:
    """The input of a generator, as an image id: the latent vector of ``seed`` (``latent:<seed>``)."""
    return f"latent:{int(seed)}"


def latent_seed(image_id: str | None) -> int | None:
    """The seed of a ``latent:<seed>`` id; None for any other id (or a seed out of range)."""
    m = _LATENT_ID.match(image_id or "")
    return int(m.group(1)) if m and int(m.group(1)) <= MAX_SEED else None


def gallery() -> list[Sample]:
    """The bundled images, photos first."""
    return [Sample(f"sample:{n}", t, "photo") for n, t in PHOTOS.items()] + [
        Sample(f"sample:{n}", t, "digit") for n, t in DIGITS.items()
    ]


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def render_sample(name: str) -> bytes:
    """The PNG bytes of a sample, made from scikit-image's photo of that name or scikit-learn's first digit."""
    if name in PHOTOS:
        from skimage import data

        arr = getattr(data, name)()
        if arr.ndim == 2:
            arr = np.stack([arr] * 3, axis=-1)
        return _png(np.ascontiguousarray(arr[..., :3]).astype(np.uint8))
    if name in DIGITS:
        from sklearn.datasets import load_digits

        digits = load_digits()
        first = int(np.flatnonzero(digits.target == int(name[5:]))[0])
        ink = np.clip(digits.images[first] / 16.0 * 255.0, 0, 255).astype(np.uint8)  # bright ink, dark paper
        return _png(ink)
    raise UnknownImageError(f"There is no bundled sample named '{name}'.")


def samples_dir() -> Path:
    return get_settings().static_dir / "samples"


def write_samples(folder: Path) -> list[Path]:
    """Write every sample's PNG into ``folder`` (what ``static/samples/`` holds)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in [*PHOTOS, *DIGITS]:
        path = folder / f"{name}.png"
        path.write_bytes(render_sample(name))
        paths.append(path)
    return paths


@lru_cache(maxsize=32)
def sample_png(name: str) -> bytes:
    """The PNG bytes of a bundled sample (``chelsea``, ``digit3``...), read from ``static/samples/``."""
    if name not in PHOTOS and name not in DIGITS:
        raise UnknownImageError(f"There is no bundled sample named '{name}'.")
    return (samples_dir() / f"{name}.png").read_bytes()


@lru_cache(maxsize=32)
def sample_thumbnail(name: str, size: int = 96) -> bytes:
    img = Image.open(io.BytesIO(sample_png(name)))
    resample = Image.Resampling.NEAREST if name in DIGITS else Image.Resampling.LANCZOS
    if max(img.size) > size:
        img.thumbnail((size, size), resample)
    elif max(img.size) < size:  # digits: 8x8 -> crisp 96x96
        f = size // max(img.size)
        img = img.resize((img.width * f, img.height * f), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def png_data_url(data: bytes) -> str:
    """A PNG's bytes as a ``data:`` URL, for an image the browser cannot load from a URL of its own."""
    return "data:image/png;base64," + base64.b64encode(data).decode()


def uploads_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "dashboard" / "uploads"


def store_upload(data: bytes, data_dir: Path) -> str:
    """Keep an uploaded file under its sha256 and return its image id."""
    sha = hashlib.sha256(data).hexdigest()
    folder = uploads_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / sha
    if not path.exists():
        tmp = folder / f".{sha}.tmp"
        tmp.write_bytes(data)
        tmp.replace(path)
    return f"upload:{sha}"


def image_bytes(image_id: str, data_dir: Path) -> bytes:
    """The bytes of an image id; ``UnknownImageError`` with a readable message otherwise."""
    if image_id.startswith("sample:"):
        return sample_png(image_id.removeprefix("sample:"))
    m = _UPLOAD_ID.match(image_id)
    if m:
        path = uploads_dir(data_dir) / m.group(1)
        if path.is_file():
            return path.read_bytes()
        raise UnknownImageError(
            "The uploaded image of this link is not stored on this dashboard (any more); upload it again."
        )
    if latent_seed(image_id) is not None:
        raise UnknownImageError(
            f"'{image_id}' is a generator's latent input, not an image: pick a sample or drop an image."
        )
    raise UnknownImageError(f"'{image_id}' is not an image id (expected sample:<name> or upload:<sha256>).")


def image_title(image_id: str | None) -> str:
    if not image_id:
        return "no image"
    if image_id.startswith("sample:"):
        name = image_id.removeprefix("sample:")
        return PHOTOS.get(name) or DIGITS.get(name) or name
    if latent_seed(image_id) is not None:
        return f"the latent of seed {latent_seed(image_id)}"
    return f"upload {image_id.removeprefix('upload:')[:12]}…"


if __name__ == "__main__":  # python -m dashboard.images: write static/samples/ again from the packages
    for written in write_samples(samples_dir()):
        print(written)
