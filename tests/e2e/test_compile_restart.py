"""Compiled inference across restarts (issue 19), with a real `python -m server` process: the first start
compiles the default model's predict in the background while answering eager; a restart over the same
data directory finds Inductor's cache there and serves compiled answers within 5 s of readiness."""

from __future__ import annotations

import io
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

from tests.processes import api_server

ENV = {"CONVLENS_COMPILE": "auto", "CONVLENS_DEFAULT_MODEL": "digits_cnn"}


def digit_png(i: int) -> bytes:
    """A different 8x8 image per call (the answer cache would repeat an earlier answer for the same one)."""
    pixels = np.random.default_rng(i).integers(0, 256, (8, 8), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "PNG")
    return buf.getvalue()


def seconds_until_compiled(url: str, timeout: float, first: int) -> tuple[float, dict]:
    """Ask for predictions of new images until one says ``compiled``; seconds from the first ask."""
    start = time.monotonic()
    for i in range(first, first + 100_000):
        r = httpx.post(
            f"{url}/api/v1/models/digits_cnn/predict", files={"image": ("d.png", digit_png(i))}, timeout=60
        )
        assert r.status_code == 200, r.text
        body = r.json()
        if body["compiled"]:
            return time.monotonic() - start, body
        assert time.monotonic() - start < timeout, f"still eager after {timeout} s"
        time.sleep(0.2)
    raise AssertionError("unreachable")


def test_a_restart_with_a_warm_compile_cache_serves_compiled_within_5_s_of_readiness(tmp_path: Path):
    data = tmp_path / "data"
    with api_server(data, tmp_path, **ENV) as (url, _proc):
        cold, body = seconds_until_compiled(url, timeout=300, first=0)
        assert body["precision"] == "exact"
        fast = httpx.post(
            f"{url}/api/v1/models/digits_cnn/predict",
            files={"image": ("d.png", digit_png(10**6))},
            data={"precision": "fast"},
            timeout=60,
        ).json()
        assert fast["compiled"] is False  # the fast precision stays eager by design
    assert any((data / "compile-cache").rglob("*")), "no compiled artifacts were kept"
    with api_server(data, tmp_path, **ENV) as (url, _proc):  # yields as soon as /readyz is 200
        warm, _ = seconds_until_compiled(url, timeout=60, first=10_000)
    print(f"compiled answers {cold:.1f} s after readiness cold, {warm:.1f} s after a restart")
    assert warm <= 5.0
