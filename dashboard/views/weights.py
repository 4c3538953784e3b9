"""What the model card's weight pull shows (CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true on the API): the job started
by its button, its bytes per file on every tick, and the card shown again once the weights are stored."""

from __future__ import annotations

from typing import Any

from dash import no_update

from dashboard.api_client import get_client
from dashboard.components.common import error_alert, notice
from dashboard.components.model_card import weights_pull_progress
from dashboard.jobs import poll_job, start_job


def start_pull(n_clicks: int | None, model: str | None) -> tuple[Any, Any, Any]:
    """(job store, status, poll disabled) for a click on the card's download button."""
    if not n_clicks or not model:  # the button rendered again (n_clicks 0): a running pull goes on
        return no_update, no_update, no_update
    started = start_job(lambda: get_client().start_weights_pull(model), model=model)
    if started.error:
        return None, error_alert(str(started.error), f"Cannot download the weights of '{model}'"), True
    waiting = weights_pull_progress({"message": f"Downloading {started.reply['file']}…", "status": "queued"})
    return started.store, waiting, False


def poll_pull(store: dict[str, Any] | None) -> tuple[Any, bool, Any]:
    """(status, poll disabled, pulled) on each tick: progress while it runs; when it succeeds, ``pulled``
    names the model, which shows the card (weights present) and its layers again."""
    poll = poll_job(store)
    if poll is None:
        return no_update, True, no_update
    if poll.error:
        return error_alert(str(poll.error), "Lost the download"), True, no_update
    job = poll.job
    if not poll.done:
        return weights_pull_progress(job), False, no_update
    model = (store or {}).get("model", "")
    if not poll.succeeded:
        return (
            error_alert(job.get("error") or job["status"], f"The download of '{model}' {job['status']}"),
            True,
            None,
        )
    result = job.get("result") or {}
    done = notice(
        f"Weights of '{model}' stored as {result.get('file', '')} (SHA-256 {result.get('sha256', '')[:12]}…, checked)."
    )
    return done, True, {"model": model, "job_id": store["job_id"] if store else None}
