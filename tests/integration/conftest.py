"""Real services for the distributed-job tests: a redis-server and `celery -A server.worker worker`
processes, started here on free ports in temporary directories and always torn down."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from server.config import REPO_ROOT
from tests.deploy.images import stage_cmd
from tests.processes import free_port

VENV_BIN = str(Path(sys.executable).parent)


@dataclass
class RedisServer:
    url: str
    client: redis.Redis
    proc: subprocess.Popen


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is not installed (Debian package redis-server; `make system-deps`)")
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            binary,
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
        ],
        stdout=(workdir / "redis.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"redis-server did not start:\n{(workdir / 'redis.log').read_text()}")
            time.sleep(0.05)
    try:
        yield RedisServer(url, client, proc)
    finally:
        client.close()
        proc.terminate()
        proc.wait(timeout=10)


@dataclass
class Worker:
    name: str
    proc: subprocess.Popen
    log: Path

    def kill(self) -> None:
        """SIGKILL the worker's whole process group: what a crashed machine or the OOM killer does."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()


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


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """Start ``celery -A server.worker worker`` (the worker image's CMD) and wait until it answers a ping."""
    from server.config import Settings
    from server.jobs_redis import make_celery

    started: list[Worker] = []

    def start(redis_url: str, data_dir: Path, name: str, timeout: float = 120.0, **extra_env: str) -> Worker:
        log = tmp_path / f"worker-{name}.log"
        cmd = [*stage_cmd("worker"), "--hostname", f"{name}@%h", "--without-mingle", "--without-gossip"]
        proc = subprocess.Popen(
            cmd,
            cwd=REPO_ROOT,
            env=worker_env(redis_url, data_dir, **extra_env),
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so kill() takes every child with it
        )
        worker = Worker(name, proc, log)
        started.append(worker)
        app = make_celery(Settings(redis_url=redis_url))
        deadline = time.monotonic() + timeout
        try:
            while not any(name in node for reply in app.control.ping(timeout=0.5) for node in reply):
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"worker {name} did not start:\n{log.read_text()[-4000:]}")
        finally:
            app.close()
        return worker

    yield start
    for w in started:
        w.stop()
