"""Files produced for clients (PNGs, .npy maps), stored on disk and served under /api/v1/artifacts."""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

from server.errors import NotFoundError

_SAFE = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
URL_PREFIX = "/api/v1/artifacts"


def content_key(*parts: bytes | str) -> str:
    """A stable hex key for a cache entry made of bytes and strings."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()[:32]


class ArtifactStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str, name: str) -> Path:
        if not _SAFE.match(key) or not _SAFE.match(name) or name.startswith("."):
            raise NotFoundError(f"Unknown artifact '{key}/{name}'.")
        return self.root / key / name

    def url(self, key: str, name: str) -> str:
        return f"{URL_PREFIX}/{key}/{name}"

    def put(self, key: str, name: str, data: bytes) -> str:
        """Write atomically; returns the URL path."""
        path = self._path(key, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return self.url(key, name)

    def exists(self, key: str, name: str) -> bool:
        return self._path(key, name).is_file()

    def path(self, key: str, name: str) -> Path:
        p = self._path(key, name)
        if not p.is_file():
            raise NotFoundError(
                f"Unknown artifact '{key}/{name}' (it may have been cleaned up; request it again)."
            )
        return p
