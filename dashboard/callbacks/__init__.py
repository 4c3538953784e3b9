"""Callback modules, one per page; importing this package registers them all (dashboard/app.py does).

A job's polling callback has one shape, registered by :func:`dashboard.callbacks.polling.on_job_tick`.
Callbacks are wiring only: they declare inputs and outputs, read Dash's context (``ctx.triggered_id``)
and return what a function of ``dashboard.views`` computes from those values.
"""

from dashboard.callbacks import attributions, audit, compare, explore, gan, neuron, projections, recurrent

__all__ = ["attributions", "audit", "compare", "explore", "gan", "neuron", "projections", "recurrent"]
