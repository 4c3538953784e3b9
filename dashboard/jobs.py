"""API jobs as the pages use them: start one, then look at it on every tick of the page's ``dcc.Interval``.

A page keeps what it needs of a running job in a ``dcc.Store``: ``{"job_id": ..., "since": ...}`` plus
whatever the page wants to remember. ``start_job`` turns the API's start reply into that store and
``poll_job`` reads ``GET /api/v1/jobs/{job_id}`` for it (frames after ``since`` when the store has one);
an ``ApiError`` becomes part of the answer, so no callback raises.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from dashboard.api_client import ApiError, get_client

# Part of the API's contract (the ``status`` of ``GET /jobs/{id}``): a job in one of these never changes.
TERMINAL_STATES = frozenset(
    {"succeeded", "failed", "cancelled", "interrupted"}
)  # interrupted: the API shut down


@dataclass(frozen=True)
class JobStart:
    """The store a page keeps for a started job and the API's reply, or the error that refused it."""

    store: dict[str, Any] | None = None
    reply: dict[str, Any] = field(default_factory=dict)
    error: ApiError | None = None


def start_job(start: Callable[[], dict[str, Any]], **keep: Any) -> JobStart:
    """Call ``start`` (an ``ApiClient.start_*`` call); the store is ``{"job_id", **keep}``."""
    try:
        reply = start()
    except ApiError as err:
        return JobStart(error=err)
    return JobStart(store={"job_id": reply["job_id"], **keep}, reply=reply)


@dataclass(frozen=True)
class JobPoll:
    """One look at a job: the API's job JSON, or the error that stopped the look (the page stops polling)."""

    job: dict[str, Any] = field(default_factory=dict)
    error: ApiError | None = None

    @property
    def status(self) -> str:
        return self.job.get("status", "")

    @property
    def done(self) -> bool:
        """Nothing more will come: the job ended, or it cannot be read."""
        return self.error is not None or self.status in TERMINAL_STATES

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"


def poll_job(store: Mapping[str, Any] | None) -> JobPoll | None:
    """The state of the job ``store`` names (None when it names none), frames after ``store["since"]``."""
    if not store or not store.get("job_id"):
        return None
    try:
        return JobPoll(job=get_client().job(store["job_id"], since=store.get("since")))
    except ApiError as err:
        return JobPoll(error=err)
