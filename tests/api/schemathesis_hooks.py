"""schemathesis hooks of the contract test (tests/api/test_openapi_contract.py): a schema-valid request
gets upload *contents* that are valid too. An OpenAPI schema can say that a field is a file, not that its
bytes are a PNG or a zip, so without this every positive case of an upload route is a 415 and their 200
answers are never checked against the declared response models. Negative cases keep whatever
schemathesis generated."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import schemathesis
from PIL import Image


def _png(seed: int, size: int = 32) -> bytes:
    img = Image.new("RGB", (size, size), (seed * 53 % 256, seed * 97 % 256, seed * 31 % 256))
    for i in range(size):
        img.putpixel((i, i), (255, 255, 255))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for c, label in enumerate(("cats", "dogs")):
            for i in range(2):
                zf.writestr(f"{label}/{i}.png", _png(10 * c + i))
    return buf.getvalue()


FILES = {"image": lambda: _png(1), "images": lambda: [_png(2), _png(3)], "archive": _zip}


@schemathesis.hook
def map_case(context: Any, case: Any) -> Any:
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive or not isinstance(case.body, dict):
        return case
    for field, make in FILES.items():
        if field in case.body and case.body[field] is not None:
            case.body[field] = make()
    return case
