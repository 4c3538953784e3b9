import io

import numpy as np
import pytest
from PIL import Image

from server.engine.imaging import Preprocessing, decode_image, mosaic, preprocess
from server.errors import CorruptImageError, PayloadTooLargeError, UnsupportedMediaError
from tests.conftest import encode

LIMITS = {"max_bytes": 20 * 1024 * 1024, "max_pixels": 50_000_000}


def rgb_image(w=32, h=24) -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "GIF", "TIFF"])
def test_every_accepted_format_decodes_to_rgb(fmt):
    img = decode_image(encode(rgb_image(), fmt), **LIMITS)
    assert img.mode == "RGB" and img.size == (32, 24)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "CMYK", "I;16", "I", "1"])
def test_every_mode_converts_to_rgb(mode):
    base = rgb_image()
    if mode == "I;16":
        src = Image.fromarray((np.arange(32 * 24).reshape(24, 32) * 60).astype(np.uint16))
    else:
        src = base.convert(mode)
    fmt = "TIFF" if mode in ("CMYK", "I;16", "I") else "PNG"
    img = decode_image(encode(src, fmt), **LIMITS)
    assert img.mode == "RGB" and img.size == (32, 24)
    if mode == "I;16":  # 16-bit range mapped to 8 bits, not clipped
        arr = np.asarray(img)[..., 0]
        assert arr.max() > 128 and arr.min() == 0


def test_transparent_pixels_composite_on_white():
    src = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    img = decode_image(encode(src, "PNG"), **LIMITS)
    assert img.getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    src = rgb_image(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    data = encode(src, "JPEG", exif=exif.tobytes())
    assert decode_image(data, **LIMITS).size == (20, 40)


def test_gif_first_frame():
    frames = [Image.new("RGB", (8, 8), c) for c in [(255, 0, 0), (0, 0, 255)]]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:])
    img = decode_image(buf.getvalue(), **LIMITS)
    r, _g, b = img.getpixel((0, 0))
    assert r > 200 and b < 50


def test_text_file_is_unsupported_media():
    with pytest.raises(UnsupportedMediaError, match="not a recognised image"):
        decode_image(b"this is a text file, not a PNG\n", **LIMITS)


def test_truncated_image_is_corrupt():
    data = encode(rgb_image(64, 64), "PNG")
    with pytest.raises(CorruptImageError):
        decode_image(data[: len(data) // 2], **LIMITS)


def test_decompression_bomb_is_too_large():
    big = Image.new("L", (10_000, 6_000))  # 60 Mpx of zeros compresses to a few KB
    data = encode(big, "PNG")
    assert len(data) < 200_000
    with pytest.raises(PayloadTooLargeError, match="pixels"):
        decode_image(data, **LIMITS)


def test_oversized_upload_is_too_large():
    with pytest.raises(PayloadTooLargeError, match="bytes"):
        decode_image(b"\x89PNG" + b"0" * 100, max_bytes=50, max_pixels=10)


def test_preprocess_crops_and_normalises():
    prep = Preprocessing((3, 16, 16), (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), crop_pct=1.0)
    x, cropped = preprocess(Image.new("RGB", (64, 32), (255, 255, 255)), prep)
    assert x.shape == (1, 3, 16, 16) and cropped.size == (16, 16)
    assert np.allclose(x.numpy(), 1.0)
    gray = Preprocessing((1, 8, 8), (0.0,), (1.0,), crop_pct=1.0)
    x1, _ = preprocess(Image.new("RGB", (8, 8), (255, 255, 255)), gray)
    assert x1.shape == (1, 1, 8, 8) and np.allclose(x1.numpy(), 1.0)


def test_mosaic_layout_and_scales():
    maps = np.stack([np.full((2, 2), v, dtype=np.float32) for v in (0.0, 1.0, 2.0, 3.0)])
    maps[0, 0, 0] = 1.0  # give channel 0 some contrast
    shared = mosaic(maps, shared_scale=True, pad=1)
    per = mosaic(maps, shared_scale=False, pad=1)
    assert shared.shape == (2 * 3 + 1, 2 * 3 + 1, 3)
    # constant channels: shared scale keeps their order, per-channel scale flattens them to the minimum colour
    assert not np.array_equal(shared[4:6, 1:3], shared[4:6, 4:6])
    assert np.array_equal(per[4:6, 1:3], per[4:6, 4:6])
