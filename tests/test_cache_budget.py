"""The disk budget of recomputable files (issue 12): LRU eviction by bytes, pinned entries (a running job's,
an open response's) never evicted, and a full disk that leaves nothing half-written."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from server import cache_budget
from server.cache_budget import CacheBudget
from server.errors import InsufficientStorageError


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def disk_bytes(root: Path) -> int:
    return sum(p.stat().st_size for p in files_under(root))


def art(budget: CacheBudget, key: str, name: str = "a.bin") -> Path:
    return budget.root / "artifacts" / key / name


def test_lru_eviction_by_bytes_whole_artifact_folders(tmp_path):
    b = CacheBudget(tmp_path, max_bytes=3000)
    b.write(art(b, "k1", "x.bin"), b"1" * 500)
    b.write(art(b, "k1", "y.bin"), b"1" * 500)  # one entry: k1 = 1000 bytes
    b.write(art(b, "k2"), b"2" * 1000)
    b.write(tmp_path / "datasets" / "d" / "features" / "f.npz", b"3" * 900)  # a file is its own entry
    b.touch(art(b, "k1", "x.bin"))  # k1 used again: k2 is now the least recently used
    b.write(art(b, "k3"), b"4" * 1000)
    assert not (tmp_path / "artifacts" / "k2").exists()
    assert art(b, "k1", "y.bin").is_file() and art(b, "k3").is_file()
    assert b.used_bytes() == disk_bytes(tmp_path) == 2900 <= b.max_bytes


def test_pinned_entries_are_never_evicted_and_go_once_released(tmp_path):
    b = CacheBudget(tmp_path, max_bytes=1500)
    b.write(art(b, "open"), b"o" * 1000)
    with b.pin(art(b, "open")):  # a response streaming it
        b.write(art(b, "new"), b"n" * 1000)
        # over budget for now: the pinned one stays, and so does the one just written (its writer uses it)
        assert art(b, "open").is_file() and art(b, "new").is_file() and b.used_bytes() == 2000
    b.write(art(b, "newer"), b"m" * 1000)  # released: the least recently used ones go, down to budget
    assert not art(b, "open").exists() and not art(b, "new").exists() and art(b, "newer").is_file()
    assert b.used_bytes() == 1000


def test_a_running_jobs_entries_stay_pinned_until_it_ends(tmp_path):
    b = CacheBudget(tmp_path, max_bytes=2500)
    in_job = threading.Event()
    done = threading.Event()

    def job() -> None:
        with b.scope():
            b.write(art(b, "frames", "step_00010.png"), b"f" * 1000)
            in_job.set()
            done.wait(10)
            b.write(art(b, "frames", "step_00020.png"), b"f" * 1000)

    t = threading.Thread(target=job)
    t.start()
    assert in_job.wait(10)
    for i in range(5):  # other requests fill the budget meanwhile
        b.write(art(b, f"other{i}"), b"x" * 1000)
    assert art(b, "frames", "step_00010.png").is_file()
    done.set()
    t.join(10)
    assert art(b, "frames", "step_00020.png").is_file()
    assert b.used_bytes() <= b.max_bytes  # evicted down to the budget once the job's pins are gone
    assert not b.pinned(art(b, "frames", "x"))


def test_existing_files_are_counted_at_start_and_leftover_temporaries_removed(tmp_path):
    old = tmp_path / "artifacts" / "old" / "a.bin"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"o" * 1000)
    (old.parent / ".a.bin.1234.tmp").write_bytes(b"half")
    b = CacheBudget(tmp_path, max_bytes=1500)
    assert b.used_bytes() == 1000 and not (old.parent / ".a.bin.1234.tmp").exists()
    b.write(art(b, "new"), b"n" * 1000)
    assert not old.exists() and art(b, "new").is_file()


class _FullDisk:
    """A file whose second write fails with ENOSPC after part of the data went to disk."""

    def __init__(self, path, mode):
        self.f = open(path, mode)  # noqa: SIM115
        self.writes = 0

    def write(self, data: bytes) -> int:
        self.f.write(data[: len(data) // 2])
        self.f.flush()
        raise OSError(errno.ENOSPC, "No space left on device")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_enospc_is_507_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    b = CacheBudget(tmp_path, max_bytes=10**6)
    b.write(art(b, "k", "keep.bin"), b"k" * 100)
    monkeypatch.setattr(cache_budget, "open", _FullDisk, raising=False)
    with pytest.raises(InsufficientStorageError) as err:
        b.write(art(b, "k", "new.bin"), b"n" * 1000)
    assert err.value.status_code == 507 and "CONVLENS_CACHE_MAX_BYTES" in err.value.message
    assert [p.name for p in files_under(tmp_path)] == ["keep.bin"] and b.used_bytes() == 100
    monkeypatch.undo()
    b.write(art(b, "k", "new.bin"), b"n" * 1000)  # the next write works
    assert art(b, "k", "new.bin").read_bytes() == b"n" * 1000


# --- through the API ---------------------------------------------------------------------------------


@pytest.fixture
def small_client(tmp_path, zoo):
    from fastapi.testclient import TestClient

    from server.api.app import create_app
    from server.config import REPO_ROOT, Settings
    from server.services import Services

    settings = Settings(
        data_dir=tmp_path / "data",
        models_dir=REPO_ROOT / "models",
        preload_default_model=False,
        cache_max_bytes=60_000,
    )
    with TestClient(create_app(services=Services.from_settings(settings, zoo=zoo))) as c:
        yield c, settings


def digit_png(i: int) -> bytes:
    import numpy as np

    from tests.conftest import encode

    rng = np.random.default_rng(i)
    return encode(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))


def activations(client, i: int):
    return client.post(
        "/api/v1/models/digits_cnn/activations",
        files={"image": (f"{i}.png", digit_png(i))},
        data={"layer": "features.0"},
    )


def test_api_disk_stays_in_budget_and_evicted_results_are_recomputed(small_client):
    client, settings = small_client
    first = activations(client, 0).json()
    for i in range(1, 40):
        assert activations(client, i).status_code == 200
    assert disk_bytes(settings.cache_dir) <= settings.cache_max_bytes
    assert client.get(first["npy_url"]).status_code == 404  # evicted long ago
    again = activations(client, 0).json()  # the in-memory hit links to evicted files: computed again
    assert client.get(again["npy_url"]).status_code == 200
    assert client.get(again["mosaic_url"]).status_code == 200


def test_api_enospc_is_507_then_the_next_request_works(small_client, monkeypatch):
    client, settings = small_client
    monkeypatch.setattr(cache_budget, "open", _FullDisk, raising=False)
    r = activations(client, 1)
    assert r.status_code == 507, r.text
    assert r.json()["error"] == "InsufficientStorageError" and "disk is full" in r.json()["detail"]
    assert [p for p in files_under(settings.cache_dir) if p.name.startswith(".")] == []
    monkeypatch.undo()
    r = activations(client, 1)
    assert r.status_code == 200
    assert client.get(r.json()["npy_url"]).status_code == 200


def test_remove_tree_deletes_and_uncounts_a_folder(tmp_path):
    b = CacheBudget(tmp_path, max_bytes=10_000)
    b.write(tmp_path / "datasets" / "d" / "features" / "f.npz", b"1" * 700)
    b.write(tmp_path / "datasets" / "e" / "features" / "f.npz", b"2" * 300)
    b.remove_tree(tmp_path / "datasets" / "d")
    assert not (tmp_path / "datasets" / "d").exists()
    assert b.used_bytes() == disk_bytes(tmp_path) == 300


def test_a_file_response_cut_by_the_client_releases_its_pin(tmp_path):
    """Issue 12: the pin of an artifact being sent is released even when the client goes away mid-file
    (a background task would never run then)."""
    import asyncio
    import threading

    from server.api.routers.artifacts import PinnedFile

    b = CacheBudget(tmp_path, max_bytes=10_000)
    path = art(b, "k1")
    b.write(path, b"x" * 5000)
    entry = b.acquire(path)
    assert b.pinned(path)

    async def receive():
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.body":
            raise OSError("client went away")

    scope = {"type": "http", "method": "GET", "headers": [], "path": "/", "asgi": {"spec_version": "2.4"}}
    raised: list[BaseException] = []

    def serve() -> None:  # on its own thread: an earlier test's event loop may still run on this one
        try:
            asyncio.run(PinnedFile(path, release=lambda: b.release(entry))(scope, receive, send))
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=serve)
    worker.start()
    worker.join(30)
    assert len(raised) == 1 and isinstance(raised[0], OSError), raised
    assert not b.pinned(path)
