"""What the services that answer for one uploaded image share: decoding it within the configured limits,
and a small content-keyed LRU of computed answers. No web imports."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from PIL import Image

from server.artifacts import ArtifactStore
from server.config import Settings
from server.engine.imaging import decode_image


def decode_upload(settings: Settings, data: bytes) -> tuple[Image.Image, str]:
    """An uploaded file -> (RGB image, sha256 of its bytes), within the configured limits."""
    img = decode_image(data, max_bytes=settings.max_upload_bytes, max_pixels=settings.max_image_pixels)
    return img, hashlib.sha256(data).hexdigest()


class LRU:
    """A small thread-safe LRU for computed responses."""

    def __init__(self, size: int, valid: Callable[[Any], bool] | None = None) -> None:
        self.size = size
        self.valid = valid  # e.g. ArtifactStore.alive: a hit whose artifacts were evicted is a miss
        self._d: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> Any | None:
        with self._lock:
            value = self._d.get(key)
        if value is not None and (self.valid is None or self.valid(value)):
            with self._lock:
                if key in self._d:
                    self._d.move_to_end(key)
                self.hits += 1
            return value
        with self._lock:
            self._d.pop(key, None)
            self.misses += 1
        return None

    def put(self, key: str, value: Any) -> None:
        if self.size <= 0:
            return
        with self._lock:
            self._d[key] = value
            self._d.move_to_end(key)
            while len(self._d) > self.size:
                self._d.popitem(last=False)


class UploadService:
    """Base of the services that take an uploaded image: settings, artifacts, an answer cache, ``decode``."""

    def __init__(self, settings: Settings, artifacts: ArtifactStore) -> None:
        self.settings = settings
        self.artifacts = artifacts
        self.cache = LRU(settings.result_cache_items, valid=artifacts.alive)

    def decode(self, data: bytes) -> tuple[Image.Image, str]:
        return decode_upload(self.settings, data)
