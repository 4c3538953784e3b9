"""Dynamic batching: concurrent single-input forwards run as one batch, each caller gets its own row."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from torch import nn

from server.engine.batching import Batcher
from server.engine.compiled import largest_bucket


class Slow(nn.Module):
    """A linear layer whose forward takes ``delay`` seconds and records each batch size it saw."""

    def __init__(self, delay: float = 0.05) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(6, 3)
        self.delay = delay
        self.sizes: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.sizes.append(x.shape[0])
        time.sleep(self.delay)
        return self.lin(x)


def inputs(n: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    return [torch.randn(1, 6, generator=g) for _ in range(n)]


def concurrently(batcher: Batcher, model: nn.Module, xs: list[torch.Tensor], key="m") -> list[torch.Tensor]:
    start = threading.Barrier(len(xs))

    def one(x: torch.Tensor) -> torch.Tensor:
        start.wait()
        with torch.no_grad():
            return batcher.run(key, x, model)

    with ThreadPoolExecutor(len(xs)) as pool:
        return list(pool.map(one, xs))


def test_concurrent_requests_share_forwards_and_get_their_own_rows():
    model, xs = Slow(), inputs(12)
    batcher = Batcher(max_batch=16)
    outs = concurrently(batcher, model, xs)
    with torch.no_grad():
        for x, out in zip(xs, outs, strict=True):
            assert out.shape == (1, 3)
            torch.testing.assert_close(out, model.lin(x), atol=1e-6, rtol=1e-5)
    # the first runs alone at once; the others arrive while it runs and go as one or two batches
    assert sum(model.sizes) == 12 and len(model.sizes) < 12 and max(model.sizes) > 1
    assert batcher.stats.forwards == len(model.sizes) and batcher.stats.largest == max(model.sizes)


def test_an_idle_request_runs_at_once_alone():
    model = Slow(delay=0.0)
    batcher = Batcher(max_batch=16)
    with torch.no_grad():
        out = batcher.run("m", inputs(1)[0], model)
    assert out.shape == (1, 3) and model.sizes == [1]


def test_batches_never_exceed_max_batch():
    model = Slow()
    outs = concurrently(Batcher(max_batch=4), model, inputs(12))
    assert len(outs) == 12 and max(model.sizes) <= 4 and sum(model.sizes) == 12


def test_whole_buckets_are_taken_and_the_rest_waits_at_the_head():
    """With compiled inference's policy, 1 + 12 concurrent requests run as 1, then 8 and 4: never a batch
    that would be padded. Each still gets its own row."""
    gate = threading.Event()

    class Gated(Slow):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            if not self.sizes:
                gate.wait(10)  # the first forward runs until all the others are queued behind it
            return super().forward(x)

    model, xs = Gated(delay=0.0), inputs(13)
    batcher = Batcher(max_batch=16, take=largest_bucket)
    first = threading.Thread(target=lambda: batcher.run("m", xs[0], model))
    first.start()
    with ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(batcher.run, "m", x, model) for x in xs[1:]]
        deadline = time.monotonic() + 10
        while sum(len(k.queue) for k in batcher._keys.values()) < 12 and time.monotonic() < deadline:
            time.sleep(0.005)
        gate.set()
        outs = [f.result() for f in futures]
    first.join()
    assert model.sizes == [1, 8, 4]
    with torch.no_grad():
        for x, out in zip(xs[1:], outs, strict=True):
            torch.testing.assert_close(out, model.lin(x), atol=1e-6, rtol=1e-5)


def test_largest_bucket():
    assert [largest_bucket(n) for n in (0, 1, 2, 3, 5, 7, 8, 9, 16, 200)] == [1, 1, 2, 2, 4, 4, 8, 8, 16, 128]


def test_max_batch_one_turns_batching_off():
    model = Slow(delay=0.01)
    concurrently(Batcher(max_batch=1), model, inputs(6))
    assert model.sizes == [1] * 6


def test_different_keys_are_never_mixed():
    model = Slow()
    xs = inputs(8)
    batcher = Batcher(max_batch=16)
    start = threading.Barrier(8)
    seen: dict[str, list[int]] = {"a": [], "b": []}

    def one(i: int) -> torch.Tensor:
        key = "a" if i % 2 else "b"

        def fn(batch: torch.Tensor) -> torch.Tensor:
            seen[key].append(batch.shape[0])
            return model(batch) + (0.0 if key == "a" else 100.0)

        start.wait()
        with torch.no_grad():
            return batcher.run(key, xs[i], fn)

    with ThreadPoolExecutor(8) as pool:
        outs = list(pool.map(one, range(8)))
    with torch.no_grad():
        for i, out in enumerate(outs):
            torch.testing.assert_close(
                out, model.lin(xs[i]) + (0.0 if i % 2 else 100.0), atol=1e-5, rtol=1e-5
            )
    assert sum(seen["a"]) == 4 and sum(seen["b"]) == 4


def test_an_error_reaches_every_request_of_its_batch_and_the_next_batch_runs():
    calls = []

    def fn(batch: torch.Tensor) -> torch.Tensor:
        calls.append(batch.shape[0])
        time.sleep(0.05)
        if len(calls) == 2:
            raise ValueError("bad batch")
        return batch * 2

    batcher = Batcher(max_batch=16)
    xs = inputs(6)
    start = threading.Barrier(6)

    def one(x):
        start.wait()
        try:
            return batcher.run("k", x, fn)
        except ValueError as exc:
            return exc

    with ThreadPoolExecutor(6) as pool:
        outs = list(pool.map(one, xs))
    failed = [o for o in outs if isinstance(o, ValueError)]
    assert len(failed) == calls[1] >= 1  # exactly the second batch's requests
    ok = [(x, o) for x, o in zip(xs, outs, strict=True) if not isinstance(o, ValueError)]
    assert all(torch.equal(o, x * 2) for x, o in ok)
    assert batcher.run("k", xs[0], lambda b: b + 1).shape == (1, 6)  # the key still works


def test_a_batch_of_more_than_one_input_is_refused():
    with pytest.raises(ValueError, match="batch of one"):
        Batcher().run("k", torch.zeros(2, 3), lambda b: b)
