"""Real Redis and Celery worker processes, for the integration tests and bench/bench_jobs.py.

The worker is started with the worker image's own CMD (``celery -A server.worker worker``, read from
the Dockerfile) in its own process group, so :meth:`Worker.kill` can take it down the way a crash or
the OOM killer would.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from server.config import REPO_ROOT, Settings
from tests.deploy.images import stage_cmd
from tests.processes import free_port, stop_process

VENV_BIN = str(Path(sys.executable).parent)


class ServiceError(RuntimeError):
    pass


@contextmanager
def redis_server(workdir: Path) -> Iterator[str]:
    """A throw-away redis-server on a free port (no persistence); yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceError("redis-server is not installed (Debian package redis-server; `make system-deps`)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = workdir / "redis.log"
    args = [
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(workdir),
        "--save",
        "",
        "--appendonly",
        "no",
    ]
    proc = subprocess.Popen([binary, *args], stdout=log.open("w"), stderr=subprocess.STDOUT)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError as exc:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise ServiceError(f"redis-server did not start:\n{log.read_text()}") from exc
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        stop_process(proc, timeout=10)


def worker_env(redis_url: str, data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVLENS_")}
    env |= {
        "PATH": VENV_BIN + os.pathsep + env.get("PATH", ""),
        "PYTHONUNBUFFERED": "1",
        "CONVLENS_REDIS_URL": redis_url,
        "CONVLENS_DATA_DIR": str(data_dir),
        "CONVLENS_MODELS_DIR": str(REPO_ROOT / "models"),
        "CONVLENS_DEVICE": "cpu",
        "CONVLENS_NUM_THREADS": "1",
        "CONVLENS_JOB_HEARTBEAT_SECONDS": "0.5",
        "CONVLENS_JOB_STALE_SECONDS": "3",
    }
    return env | extra


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen
    log: Path

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: what a crash or the OOM killer does."""
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """A warm shutdown (SIGTERM), killed if it does not end in 20 s."""
        if self.alive:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


def start_worker(
    redis_url: str,
    data_dir: Path,
    name: str,
    log: Path,
    timeout: float = 120.0,
    *,
    exact_cmd: bool = False,
    **env: str,
) -> Worker:
    """Start the worker image's CMD and wait until it answers a ping over the broker.

    The node is called ``<name>@<host>``; with ``exact_cmd`` the CMD runs unchanged, so the node has
    Celery's default name ``celery@<host>`` (as in a container) and ``name`` must be "celery".
    """
    from server.jobs_redis import make_celery

    extra = [] if exact_cmd else ["--hostname", f"{name}@%h", "--without-mingle", "--without-gossip"]
    cmd = [*stage_cmd("worker"), *extra]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=worker_env(redis_url, data_dir, **env),
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    worker = Worker(name, proc, log)
    app = make_celery(Settings(redis_url=redis_url))
    deadline = time.monotonic() + timeout
    try:
        while not any(
            node.startswith(f"{name}@") for reply in app.control.ping(timeout=0.5) for node in reply
        ):
            if not worker.alive or time.monotonic() > deadline:
                worker.stop()
                raise ServiceError(f"worker {name} did not start:\n{log.read_text()[-4000:]}")
    finally:
        app.close()
    return worker


@contextmanager
def celery_worker(redis_url: str, data_dir: Path, name: str, log: Path, **env: str) -> Iterator[Worker]:
    worker = start_worker(redis_url, data_dir, name, log, **env)
    try:
        yield worker
    finally:
        worker.stop()
