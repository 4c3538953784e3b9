"""One way to start and poll API jobs: the store a page keeps, and errors as answers, never raised."""

from __future__ import annotations

import pytest

from dashboard.api_client import ApiError
from dashboard.jobs import TERMINAL_STATES, JobPoll, poll_job, start_job
from tests.conftest import wait_for


def test_terminal_states_are_the_apis():
    from server.jobs import TERMINAL  # the contract, checked from the server's side

    assert set(TERMINAL) == TERMINAL_STATES


def test_no_job_means_nothing_to_poll(api):
    assert poll_job(None) is None
    assert poll_job({}) is None
    assert poll_job({"job_id": None}) is None


def test_a_job_is_started_polled_to_the_end_and_kept_in_the_store(api):
    body = {"model": "digits_cnn", "checkpoints": ["epoch_01", "epoch_03"]}
    started = start_job(lambda: api.start_checkpoint_compare(body), since=None, model="digits_cnn")
    assert started.error is None
    assert started.store == {"job_id": started.reply["job_id"], "since": None, "model": "digits_cnn"}
    poll = wait_for(lambda: (p := poll_job(started.store)) and p.done and p, 120)
    assert poll.error is None and poll.succeeded and poll.status == "succeeded"
    assert poll.job["result"]["comparisons"]


def test_a_refused_start_and_a_lost_job_are_errors_in_the_answer(api):
    refused = start_job(lambda: api.start_checkpoint_compare({"model": "digits_cnn", "checkpoints": ["x"]}))
    assert refused.store is None and isinstance(refused.error, ApiError)
    assert refused.error.status == 422 and "at least 2" in str(refused.error)
    lost = poll_job({"job_id": "0" * 32})
    assert isinstance(lost, JobPoll) and lost.error is not None and lost.error.status == 404
    assert lost.done and not lost.succeeded


@pytest.mark.parametrize("status", sorted(TERMINAL_STATES))
def test_done_in_every_terminal_state(status):
    assert JobPoll(job={"status": status}).done


@pytest.mark.parametrize("status", ["queued", "running"])
def test_not_done_while_queued_or_running(status):
    assert not JobPoll(job={"status": status}).done
