"""Files produced for clients (PNGs, .npy maps), stored on disk and served under /api/v1/artifacts."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from server.cache_budget import CacheBudget
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
    """Under the disk budget: each key folder is one entry, evicted least recently used first."""

    def __init__(self, root: Path, budget: CacheBudget | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.budget = budget or CacheBudget(self.root.parent, max_bytes=2**63)

    def _path(self, key: str, name: str) -> Path:
        if not _SAFE.match(key) or not _SAFE.match(name) or name.startswith("."):
            raise NotFoundError(f"Unknown artifact '{key}/{name}'.")
        return self.root / key / name

    def url(self, key: str, name: str) -> str:
        return f"{URL_PREFIX}/{key}/{name}"

    def put(self, key: str, name: str, data: bytes) -> str:
        """Write atomically; returns the URL path."""
        path = self._path(key, name)
        self.budget.write(path, data)
        return self.url(key, name)

    def exists(self, key: str, name: str) -> bool:
        path = self._path(key, name)
        if path.is_file():
            self.budget.touch(path)
            return True
        return False

    def alive(self, result: Any) -> bool:
        """Whether every artifact folder a (cached) result links to is still on disk (not evicted)."""
        if isinstance(result, dict):
            return all(self.alive(v) for v in result.values())
        if isinstance(result, list):
            return all(self.alive(v) for v in result)
        if isinstance(result, str) and result.startswith(URL_PREFIX + "/"):
            key = result[len(URL_PREFIX) + 1 :].split("/", 1)[0]
            if not _SAFE.match(key) or not (self.root / key).is_dir():
                return False
            self.budget.touch(self.root / key / "_")
        return True

    def path(self, key: str, name: str) -> Path:
        p = self._path(key, name)
        if not p.is_file():
            raise NotFoundError(
                f"Unknown artifact '{key}/{name}' (it may have been cleaned up; request it again)."
            )
        return p
