"""Decoding uploads safely, preprocessing for a model card, and rendering maps to PNG."""

from __future__ import annotations

import io
import math
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from server.errors import CorruptImageError, PayloadTooLargeError, UnsupportedMediaError

ACCEPTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF", "MPO")


def decode_image(data: bytes, *, max_bytes: int, max_pixels: int) -> Image.Image:
    """Bytes of an uploaded file -> an RGB, RGBA-free PIL image (first frame, EXIF orientation applied).

    Not an image -> UnsupportedMediaError (415); truncated or corrupt -> CorruptImageError (422);
    too many bytes or pixels (decompression bombs included) -> PayloadTooLargeError (413).
    """
    if len(data) > max_bytes:
        raise PayloadTooLargeError(f"Upload of {len(data):,} bytes exceeds the limit of {max_bytes:,} bytes.")
    if not data:
        raise UnsupportedMediaError("The upload is empty; send a JPEG, PNG, WebP, BMP, GIF or TIFF image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise UnsupportedMediaError(
            "The file is not a recognised image; send a JPEG, PNG, WebP, BMP, GIF or TIFF image."
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLargeError(f"Image rejected as a possible decompression bomb: {exc}") from None
    except Exception as exc:  # header parsers raise a zoo of types on garbage
        raise CorruptImageError(f"The image header could not be read: {exc}") from None
    if img.format not in ACCEPTED_FORMATS:
        raise UnsupportedMediaError(
            f"Image format {img.format} is not accepted; send JPEG, PNG, WebP, BMP, GIF or TIFF."
        )
    w, h = img.size
    if w * h > max_pixels:
        raise PayloadTooLargeError(
            f"Image of {w}x{h} = {w * h:,} pixels exceeds the limit of {max_pixels:,} pixels."
        )
    if w == 0 or h == 0:
        raise CorruptImageError("The image has no pixels.")
    try:
        img.seek(0)
        img.load()
        oriented: Image.Image = ImageOps.exif_transpose(img) or img
    except Exception as exc:
        raise CorruptImageError(
            f"The image is truncated or corrupt and could not be decoded: {exc}"
        ) from None
    return to_rgb(oriented)


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode (L, LA, P, RGBA, CMYK, I;16, I, F, 1) -> RGB; transparency is composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        if mode.startswith("I;16"):
            lo, hi = 0.0, 65535.0
        scaled = np.zeros_like(arr) if hi <= lo else (arr - lo) / (hi - lo) * 255.0
        return Image.fromarray(np.clip(scaled, 0, 255).astype(np.uint8), "L").convert("RGB")
    if mode == "P" or mode == "LA" or mode == "PA":
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, img).convert("RGB")
    return img.convert("RGB")


@dataclass(frozen=True)
class Preprocessing:
    """How a model wants its input: (C, H, W), mean/std on a 0..1 pixel scale, resize policy."""

    input_size: tuple[int, int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_pct: float = 0.875
    interpolation: str = "bilinear"


_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "nearest": Image.Resampling.NEAREST,
    "box": Image.Resampling.BOX,
}


def resize_and_crop(img: Image.Image, prep: Preprocessing) -> Image.Image:
    """Resize the shorter side to size/crop_pct, then centre-crop to the model's input size."""
    _, h, w = prep.input_size
    scale_size = math.floor(max(h, w) / prep.crop_pct)
    iw, ih = img.size
    ratio = scale_size / min(iw, ih)
    nw, nh = max(w, round(iw * ratio)), max(h, round(ih * ratio))
    img = img.resize((nw, nh), _RESAMPLE.get(prep.interpolation, Image.Resampling.BILINEAR))
    left, top = (nw - w) // 2, (nh - h) // 2
    return img.crop((left, top, left + w, top + h))


def to_tensor(img: Image.Image, prep: Preprocessing) -> torch.Tensor:
    """A cropped PIL image -> a normalised (1, C, H, W) float tensor; grayscale for one-channel models."""
    c = prep.input_size[0]
    if c == 1:
        arr = np.asarray(img.convert("L"), dtype=np.float32)[None] / 255.0
    else:
        arr = np.asarray(img.convert("RGB"), dtype=np.float32).transpose(2, 0, 1) / 255.0
    mean = np.asarray(prep.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(prep.std, dtype=np.float32).reshape(-1, 1, 1)
    return torch.from_numpy((arr - mean) / std).unsqueeze(0)


def preprocess(img: Image.Image, prep: Preprocessing) -> tuple[torch.Tensor, Image.Image]:
    """The model input tensor and the cropped RGB image it was made from (for overlays)."""
    cropped = resize_and_crop(img, prep)
    return to_tensor(cropped, prep), cropped


def denormalize(x: torch.Tensor, prep: Preprocessing) -> np.ndarray:
    """A normalised (C, H, W) or (1, C, H, W) tensor -> uint8 H x W x 3 RGB."""
    if x.dim() == 4:
        x = x[0]
    arr = x.detach().float().cpu().numpy()
    mean = np.asarray(prep.mean, dtype=np.float32).reshape(-1, 1, 1)
    std = np.asarray(prep.std, dtype=np.float32).reshape(-1, 1, 1)
    arr = np.clip((arr * std + mean) * 255.0, 0, 255).astype(np.uint8).transpose(1, 2, 0)
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return arr


# Viridis, sampled at 9 points; interpolated to a 256-entry lookup table.
_VIRIDIS_ANCHORS = np.array(
    [
        [68, 1, 84],
        [71, 44, 122],
        [59, 81, 139],
        [44, 113, 142],
        [33, 144, 141],
        [39, 173, 129],
        [92, 200, 99],
        [170, 220, 50],
        [253, 231, 37],
    ],
    dtype=np.float64,
)
_t = np.linspace(0, 1, len(_VIRIDIS_ANCHORS))
VIRIDIS_LUT = np.stack(
    [np.interp(np.linspace(0, 1, 256), _t, _VIRIDIS_ANCHORS[:, c]) for c in range(3)], axis=1
).astype(np.uint8)


def normalize_maps(maps: np.ndarray, shared_scale: bool) -> np.ndarray:
    """(C, H, W) float maps -> (C, H, W) in [0, 1], with one scale for all channels or one per channel."""
    maps = np.asarray(maps, dtype=np.float32)
    if shared_scale:
        lo, hi = float(maps.min()), float(maps.max())
        return np.zeros_like(maps) if hi <= lo else (maps - lo) / (hi - lo)
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    span = np.where(hi > lo, hi - lo, 1.0)
    return np.where(hi > lo, (maps - lo) / span, 0.0).astype(np.float32)


def colorize(unit: np.ndarray) -> np.ndarray:
    """[0, 1] floats (H, W) -> uint8 RGB with viridis."""
    idx = np.clip((np.asarray(unit) * 255.0).round(), 0, 255).astype(np.uint8)
    return VIRIDIS_LUT[idx]


def grid_shape(n: int) -> tuple[int, int]:
    cols = max(1, math.ceil(math.sqrt(n)))
    return math.ceil(n / cols), cols


# A PNG palette: viridis in entries 0..254, white (the grid's background) in entry 255.
MOSAIC_PALETTE = np.concatenate(
    [VIRIDIS_LUT[np.linspace(0, 255, 255).round().astype(int)], [[255, 255, 255]]]
)
_BACKGROUND = 255


def mosaic_indices(
    maps: np.ndarray, *, shared_scale: bool, tile: int | None = None, pad: int = 1
) -> np.ndarray:
    """All channels of a (C, H, W) map as one grid of MOSAIC_PALETTE indices (uint8), row-major order.

    Indices rather than RGB: a palette PNG is a third of the bytes and encodes ~40x faster.
    """
    if maps.ndim == 1:  # linear layer: one row of 1x1 "maps"
        maps = maps[:, None, None]
    unit = normalize_maps(maps, shared_scale)
    c, h, w = unit.shape
    if tile and (h < tile or w < tile):
        rep = max(1, tile // max(h, w))
        unit = unit.repeat(rep, axis=1).repeat(rep, axis=2)
        c, h, w = unit.shape
    rows, cols = grid_shape(c)
    levels = np.clip((unit * 254.0).round(), 0, 254).astype(np.uint8)
    # Pad the channel list to a full grid, frame each tile, then lay the tiles out in one reshape.
    grid = np.full((rows * cols, h + pad, w + pad), _BACKGROUND, dtype=np.uint8)
    grid[:c, pad:, pad:] = levels
    out = (
        grid.reshape(rows, cols, h + pad, w + pad)
        .transpose(0, 2, 1, 3)
        .reshape(rows * (h + pad), cols * (w + pad))
    )
    return np.pad(out, ((0, pad), (0, pad)), constant_values=_BACKGROUND)


def mosaic(maps: np.ndarray, *, shared_scale: bool, tile: int | None = None, pad: int = 1) -> np.ndarray:
    """All channels of a (C, H, W) map as one viridis RGB grid (uint8), row-major channel order."""
    return MOSAIC_PALETTE.astype(np.uint8)[
        mosaic_indices(maps, shared_scale=shared_scale, tile=tile, pad=pad)
    ]


def mosaic_png(maps: np.ndarray, *, shared_scale: bool, pad: int = 1) -> bytes:
    """The mosaic as a palette PNG."""
    img = Image.fromarray(mosaic_indices(maps, shared_scale=shared_scale, pad=pad), mode="P")
    img.putpalette(MOSAIC_PALETTE.astype(np.uint8).tobytes())
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def png_bytes(arr: np.ndarray, upscale_to: int | None = None) -> bytes:
    """uint8 (H, W) or (H, W, 3) array -> PNG bytes (nearest-neighbour upscaled for tiny maps)."""
    img = Image.fromarray(arr)
    if upscale_to and max(img.size) < upscale_to:
        f = max(1, upscale_to // max(img.size))
        img = img.resize((img.size[0] * f, img.size[1] * f), Image.Resampling.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False, compress_level=1)
    return buf.getvalue()


def npy_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(arr), allow_pickle=False)
    return buf.getvalue()


def signed_map_to_rgb(m: np.ndarray) -> np.ndarray:
    """A (C, H, W) or (H, W) attribution map -> uint8 RGB, each channel rescaled symmetrically around 0.

    For 3-channel input-space maps (deconvnet, guided backprop) this shows the image-like pattern
    the way Zeiler & Fergus did; single-channel maps get viridis.
    """
    m = np.asarray(m, dtype=np.float32)
    if m.ndim == 3 and m.shape[0] == 3:
        scale = float(np.abs(m).max()) or 1.0
        rgb = (m / scale * 0.5 + 0.5).transpose(1, 2, 0)
        return np.clip(rgb * 255.0, 0, 255).astype(np.uint8)
    if m.ndim == 3:
        m = np.abs(m).max(axis=0)
    lo, hi = float(m.min()), float(m.max())
    unit = np.zeros_like(m) if hi <= lo else (m - lo) / (hi - lo)
    return colorize(unit)
