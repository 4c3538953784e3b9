"""The one shape of a job's polling callback: on every tick of the page's ``dcc.Interval``, hand the job's
store (and any extra state) to a view function, whose tuple fills the outputs."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dash import Input, Output, State, callback


def on_job_tick(
    poll: str, job: str, outputs: list[Output], view: Callable[..., Any], *states: State
) -> Callable[..., Any]:
    """Register ``view(job_store, *state_values)`` as the callback of interval ``poll`` for store ``job``."""

    @callback(*outputs, Input(poll, "n_intervals"), State(job, "data"), *states, prevent_initial_call=True)
    def tick(_n: int, job_store: dict[str, Any] | None, *values: Any) -> Any:
        return view(job_store, *values)

    tick.__name__ = f"on_poll_{poll.replace('-', '_')}"
    return tick
