"""The disk budget of everything the server writes that can be recomputed (issue 12).

Every file under ``settings.cache_dir`` - artifacts (PNGs, .npy maps, DeepVis frames, reports), feature
caches and projection results - is written through :meth:`CacheBudget.write` and read under
:meth:`CacheBudget.pin`. Uploaded datasets and user models live outside ``cache_dir`` and are never
touched. An *entry* is one artifact key folder (``artifacts/<key>/``, whose files belong together) or
one file elsewhere. When the total goes over ``max_bytes`` the least recently used entries are deleted,
never one that is pinned: by a running job (:meth:`scope`, the job runner's; everything the job writes
or reads stays pinned until it ends) or by a response being sent (:meth:`pin`). A full disk (ENOSPC,
EDQUOT) is an :class:`InsufficientStorageError` (507) and leaves no partial file behind.

Accounting is per process (a Celery worker on the same disk keeps its own); the folder is scanned once
at start so entries written before are counted, oldest modification first.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
import uuid
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from server.errors import InsufficientStorageError

DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def disk_full_error(exc: OSError) -> InsufficientStorageError:
    return InsufficientStorageError(
        f"The server's disk is full ({os.strerror(exc.errno or errno.ENOSPC)}); nothing was stored. "
        "Free space under CONVLENS_DATA_DIR or lower CONVLENS_CACHE_MAX_BYTES, then retry."
    )


class CacheBudget:
    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Path, int] = OrderedDict()  # entry -> bytes, least recently used first
        self._files: dict[Path, int] = {}
        self._entry_files: dict[Path, set[Path]] = {}
        self._pins: Counter[Path] = Counter()
        self._lock = threading.Lock()
        self._local = threading.local()
        self.evicted = 0
        self._scan()

    # --- what an entry is -------------------------------------------------------------------------------

    def entry(self, path: Path) -> Path:
        """The unit of eviction that ``path`` belongs to."""
        rel = Path(path).relative_to(self.root)
        if len(rel.parts) >= 3 and rel.parts[0] == "artifacts":
            return self.root / rel.parts[0] / rel.parts[1]
        return Path(path)

    def _scan(self) -> None:
        if not self.root.is_dir():
            return
        found = []
        for dirpath, _dirs, names in os.walk(self.root):
            for name in names:
                p = Path(dirpath) / name
                if name.startswith("."):  # a temporary file left by a crash: never complete
                    p.unlink(missing_ok=True)
                    continue
                try:
                    st = p.stat()
                except FileNotFoundError:
                    continue
                found.append((st.st_mtime, p, st.st_size))
        for _mtime, p, size in sorted(found, key=lambda t: t[0]):
            self._add(p, size)

    def _add(self, path: Path, size: int) -> None:
        e = self.entry(path)
        old = self._files.get(path, 0)
        self._files[path] = size
        self._entry_files.setdefault(e, set()).add(path)
        self._entries[e] = self._entries.get(e, 0) - old + size
        self._entries.move_to_end(e)

    # --- use ---------------------------------------------------------------------------------------------

    def remove_tree(self, folder: Path) -> None:
        """Delete ``folder`` (a deleted dataset's caches) and stop counting every file under it."""
        folder = Path(folder)
        with self._lock:
            for path in [p for p in self._files if p.is_relative_to(folder)]:
                e = self.entry(path)
                self._entries[e] = self._entries.get(e, 0) - self._files.pop(path)
                files = self._entry_files.get(e, set())
                files.discard(path)
                if not files:
                    self._entries.pop(e, None)
                    self._entry_files.pop(e, None)
            shutil.rmtree(folder, ignore_errors=True)

    def used_bytes(self) -> int:
        with self._lock:
            return sum(self._entries.values())

    def write(self, path: Path, data: bytes | Callable[[Path], None]) -> None:
        """Write ``path`` atomically (bytes, or ``data(tmp_path)`` writes the file), count it, and evict
        least recently used entries if the budget is exceeded. Disk full -> 507 with nothing left behind."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(data, bytes):
                with open(tmp, "wb") as f:
                    f.write(data)
            else:
                data(tmp)
            size = tmp.stat().st_size
            os.replace(tmp, path)
        except OSError as exc:
            if exc.errno in DISK_FULL:
                raise disk_full_error(exc) from None
            raise
        finally:
            tmp.unlink(missing_ok=True)
        with self._lock:
            self._add(path, size)
            self._pin_in_scope(self.entry(path))
        self.evict(keep=self.entry(path))  # never the file just written: its writer is about to use it

    def touch(self, path: Path) -> None:
        """Mark ``path``'s entry as just used (a cache hit); pinned too inside a job's :meth:`scope`."""
        e = self.entry(Path(path))
        with self._lock:
            if e in self._entries:
                self._entries.move_to_end(e)
            self._pin_in_scope(e)

    def pinned(self, path: Path) -> bool:
        with self._lock:
            return self._pins[self.entry(Path(path))] > 0

    def acquire(self, path: Path) -> Path:
        """Pin ``path``'s entry until :meth:`release` (for a response that streams a file)."""
        e = self.entry(Path(path))
        with self._lock:
            self._pins[e] += 1
            if e in self._entries:
                self._entries.move_to_end(e)
        return e

    def release(self, entry: Path) -> None:
        with self._lock:
            self._pins[entry] -= 1
            if self._pins[entry] <= 0:
                del self._pins[entry]

    @contextmanager
    def pin(self, path: Path) -> Iterator[None]:
        e = self.acquire(path)
        try:
            yield
        finally:
            self.release(e)

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Everything this thread writes or touches inside stays pinned until the scope ends (a job)."""
        outer = getattr(self._local, "pins", None)
        self._local.pins = set()
        try:
            yield
        finally:
            pins, self._local.pins = self._local.pins, outer
            with self._lock:
                for e in pins:
                    self._pins[e] -= 1
                    if self._pins[e] <= 0:
                        del self._pins[e]
            self.evict()

    def _pin_in_scope(self, e: Path) -> None:  # with self._lock held
        pins = getattr(self._local, "pins", None)
        if pins is not None and e not in pins:
            pins.add(e)
            self._pins[e] += 1

    def evict(self, keep: Path | None = None) -> None:
        """Delete least recently used unpinned entries (but ``keep``) until the total is within budget."""
        with self._lock:
            total = sum(self._entries.values())
            victims = []
            for e, size in self._entries.items():
                if total <= self.max_bytes:
                    break
                if self._pins[e] > 0 or e == keep:
                    continue
                victims.append(e)
                total -= size
            for e in victims:
                del self._entries[e]
                for f in self._entry_files.pop(e, ()):
                    self._files.pop(f, None)
                if e.is_dir():
                    shutil.rmtree(e, ignore_errors=True)
                else:
                    e.unlink(missing_ok=True)
                self.evicted += 1
