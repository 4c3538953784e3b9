"""Admission control (issue 12): a bounded queue per model; past it 503 with Retry-After at once."""

from __future__ import annotations

import asyncio

import pytest

from server.api.admission import Admission
from server.errors import ServiceBusyError


def test_queue_bound_per_model_then_503_and_slots_are_given_back():
    async def scenario() -> tuple[list[str], int]:
        adm = Admission(max_queue=2, concurrency=1, retry_after=3)
        release = asyncio.Event()
        order: list[str] = []

        async def request(name: str, model: str = "m") -> None:
            async with adm.slot(model):
                order.append(name)
                await release.wait()

        tasks = [asyncio.create_task(request(f"r{i}")) for i in range(3)]  # 1 running + 2 queued
        await asyncio.sleep(0.01)
        assert order == ["r0"] and adm.admitted("m") == 3
        with pytest.raises(ServiceBusyError) as err:  # the 4th is refused without waiting
            async with adm.slot("m"):
                pass
        assert err.value.status_code == 503 and err.value.headers == {"Retry-After": "3"}
        assert "CONVLENS_MAX_QUEUE=2" in err.value.message
        other = asyncio.create_task(request("other", model="n"))  # another model has its own queue
        await asyncio.sleep(0.01)
        assert "other" in order
        release.set()
        await asyncio.gather(*tasks, other)
        return order, adm.admitted("m")

    order, left = asyncio.run(scenario())
    assert order[:1] == ["r0"] and sorted(order) == ["other", "r0", "r1", "r2"] and left == 0


def test_a_failed_request_gives_its_slot_back():
    async def scenario() -> int:
        adm = Admission(max_queue=0, concurrency=1)
        with pytest.raises(RuntimeError):
            async with adm.slot("m"):
                raise RuntimeError("boom")
        async with adm.slot("m"):
            return adm.admitted("m")

    assert asyncio.run(scenario()) == 1


def test_the_api_sends_503_with_retry_after_and_a_readable_body(client, chelsea_jpeg):
    adm = client.app.state.admission
    adm._admitted["efficientnet_lite0"] = adm.concurrency + adm.max_queue  # as if the queue were full
    try:
        r = client.post("/api/v1/models/efficientnet_lite0/predict", files={"image": ("c.jpg", chelsea_jpeg)})
    finally:
        adm._admitted["efficientnet_lite0"] = 0
    assert r.status_code == 503 and r.headers["retry-after"] == "1"
    assert r.json()["error"] == "ServiceBusyError" and "busy" in r.json()["detail"]
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(("ms", "want"), [(0.5, 0.0005), (2.0, 0.002), (0.0, None)])
def test_the_app_sets_the_gil_switch_interval(tmp_path, ms, want):
    """Compiled CPU kernels run holding the GIL: the app hands it over every ``gil_switch_ms`` so that the
    event loop (health checks) and request threads are not kept waiting Python's 5 ms per kernel; 0 keeps
    what the process had."""
    import sys

    from server.api.app import create_app
    from server.config import Settings

    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(0.005)
        create_app(Settings(data_dir=tmp_path, preload_default_model=False, gil_switch_ms=ms))
        assert sys.getswitchinterval() == pytest.approx(want if want is not None else 0.005)
    finally:
        sys.setswitchinterval(before)
