"""RedisJobStore against a real redis-server: the JobStore protocol, liveness, and run_job on it."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from server.jobs import JobManager, JobState
from server.jobs_redis import RedisJobStore, run_queued_job
from tests.conftest import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def store(redis_server) -> RedisJobStore:
    redis_server.client.flushdb()
    return RedisJobStore(redis_server.client, ttl=600)


def new_job(store: RedisJobStore, kind: str = "demo", **kw) -> JobState:
    st = JobState(id=uuid.uuid4().hex, kind=kind, params={"n": 3, "nested": {"a": [1, 2]}}, **kw)
    store.create(st)
    return st


def test_create_get_update_round_trip_json_values(store):
    st = new_job(store)
    got = store.get(st.id)
    assert got == st
    store.beat(st.id, "w", alive_for=60)  # a running job needs a live worker
    frame = {"coords": [[0.5, -1.25], [2.0, 3.0]], "iteration": 50}
    store.update(st.id, status="running", progress=0.4, frame=frame, frame_index=1, message="step 50")
    got = store.get(st.id)
    assert (got.status, got.progress, got.frame, got.frame_index) == ("running", 0.4, frame, 1)
    assert got.params == {"n": 3, "nested": {"a": [1, 2]}}
    assert got.updated >= st.updated
    assert 0 < store.r.ttl("convlens:job:" + st.id) <= 600


def test_numpy_frames_and_results_are_stored_as_json(store):
    import numpy as np

    st = new_job(store)
    coords = np.array([[0.5, -1.0], [2.0, 3.25]], dtype=np.float32)
    store.update(st.id, frame={"coords": coords, "kl": np.float64(1.5), "n": np.int64(2)}, result=coords[0])
    got = store.get(st.id)
    assert got.frame == {"coords": [[0.5, -1.0], [2.0, 3.25]], "kl": 1.5, "n": 2}
    assert got.result == [0.5, -1.0]


def test_update_of_an_unknown_or_expired_job_creates_nothing(store):
    store.update("nope", status="running")
    assert store.get("nope") is None
    assert store.r.exists("convlens:job:nope") == 0


def test_cancel_flags_and_control_values(store):
    st = new_job(store)
    assert not store.cancel_requested(st.id)
    store.set_control(st.id, {"learning_rate": 200})
    store.set_control(st.id, {"perplexity": 30.0})
    assert store.get_control(st.id) == {"learning_rate": 200, "perplexity": 30.0}
    store.request_cancel(st.id)
    assert store.cancel_requested(st.id)
    assert store.get_control("other") == {}


def test_cache_lookup_finds_only_succeeded_jobs(store):
    st = new_job(store, cache_key="k1")
    assert store.find_cached("k1") is None
    store.update(st.id, status="running")
    assert store.find_cached("k1") is None
    store.update(st.id, status="succeeded", result={"ok": 1})
    found = store.find_cached("k1")
    assert found is not None and found.id == st.id and found.result == {"ok": 1}


def test_list_is_ordered_by_creation_and_forgets_expired_jobs(store):
    a = new_job(store)
    b = new_job(store)
    assert [s.id for s in store.list()] == [a.id, b.id]
    store.r.delete("convlens:job:" + a.id)  # as if its TTL ran out
    assert [s.id for s in store.list()] == [b.id]
    assert store.r.zscore("convlens:jobs", a.id) is None


def test_a_running_job_whose_worker_stops_beating_becomes_failed_with_a_clear_message(store):
    st = new_job(store)
    store.beat(st.id, "w1@box", alive_for=1.5)
    store.update(st.id, status="running", worker="w1@box")
    assert store.get(st.id).status == "running"
    time.sleep(0.8)
    store.beat(st.id, "w1@box", alive_for=1.5)  # still alive
    time.sleep(0.8)
    assert store.get(st.id).status == "running"
    time.sleep(1.8)  # no beat for longer than alive_for
    lost = store.get(st.id)
    assert lost.status == "failed"
    assert "w1@box" in lost.error and "heartbeat" in lost.error and "Submit the job again" in lost.error
    assert lost.message == "worker lost"
    assert [s.status for s in store.list()] == ["failed"]


def test_finished_jobs_are_never_marked_lost(store):
    st = new_job(store)
    store.update(st.id, status="succeeded", result=1)
    assert store.get(st.id).status == "succeeded"  # no liveness key at all, still succeeded


def demo(ctx, params):
    """A task of this test process, to drive run_job through the real Redis store: it reports a frame
    per step and stops three steps after a learning rate arrives (or after ``steps``)."""
    assert ctx.services.settings.data_dir == Path(params["data_dir"])  # the services of its data dir
    lr, stop_at, i = None, params["steps"], 0
    for i in range(params["steps"]):
        lr = ctx.control().get("learning_rate", lr)
        if lr is not None and stop_at == params["steps"]:
            stop_at = i + 3
        ctx.report((i + 1) / params["steps"], f"step {i + 1}", frame={"i": i, "lr": lr}, force=True)
        if i + 1 >= stop_at:
            break
        time.sleep(params["sleep"])
    return {"steps": i + 1, "last_lr": lr}


DEMO_TASKS = {"redis_store_demo": demo}


def test_run_job_on_the_redis_store_streams_frames_reads_controls_and_cancels(store, services):
    jobs = JobManager(store, _ThreadStart(services), DEMO_TASKS, services.settings.data_dir)
    st = jobs.submit("redis_store_demo", {"steps": 3000, "sleep": 0.01})
    seen = set()
    while (cur := jobs.get(st.id)).frame_index < 5:
        assert cur.status in ("queued", "running"), cur
        seen.add(cur.frame_index)
        time.sleep(0.005)
    jobs.send_control(st.id, {"learning_rate": 500})
    done = jobs.wait(st.id, timeout=30)
    assert done.status == "succeeded", done.error
    assert done.result["last_lr"] == 500
    assert done.frame_index == done.result["steps"] < 3000  # it stopped because the control arrived
    assert done.frame == {"i": done.result["steps"] - 1, "lr": 500}
    assert len(seen) > 1  # intermediate frames were visible while it ran

    slow = jobs.submit("redis_store_demo", {"steps": 3000, "sleep": 0.01})
    wait_for(lambda: jobs.get(slow.id).frame_index >= 3, timeout=30)
    jobs.cancel(slow.id)
    cancelled = jobs.wait(slow.id, timeout=30)
    assert cancelled.status == "cancelled" and cancelled.frame_index < 3000


class _ThreadStart:
    """What a Celery worker does with a job id, in a thread of this process (no Celery here)."""

    def __init__(self, services):
        self.services = services

    def start(self, store, state):
        kwargs = {
            "tasks": DEMO_TASKS,
            "services": self.services,
            "worker": "test-thread",
            "heartbeat_seconds": 0.2,
            "alive_for": 2.0,
        }
        threading.Thread(target=run_queued_job, args=(store, state.id), kwargs=kwargs, daemon=True).start()

    def shutdown(self):
        pass
