"""Real services for the distributed-job tests: a redis-server and `celery -A server.worker worker`
processes, started here on free ports in temporary directories and always torn down."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from tests.integration.services import ServiceError, Worker, start_worker
from tests.integration.services import redis_server as run_redis_server


@dataclass
class RedisServer:
    url: str
    client: redis.Redis


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    try:
        with run_redis_server(tmp_path_factory.mktemp("redis")) as url:
            client = redis.Redis.from_url(url)
            yield RedisServer(url, client)
            client.close()
    except ServiceError as exc:
        pytest.fail(str(exc))


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    """``workers(redis_url, data_dir, name, **env)`` starts a worker; all are stopped after the test."""
    started: list[Worker] = []

    def start(redis_url: str, data_dir: Path, name: str, **env: str) -> Worker:
        try:
            worker = start_worker(redis_url, data_dir, name, tmp_path / f"worker-{name}.log", **env)
        except ServiceError as exc:
            pytest.fail(str(exc))
        started.append(worker)
        return worker

    yield start
    for w in started:
        w.stop()
