"""Callback modules, one per page; importing this package registers them all (dashboard/app.py does).

Callbacks stay thin: read ids and inputs, call ``dashboard.api_client``, hand data to ``dashboard.figures``
and ``dashboard.components``, and turn every ``ApiError`` into a readable message in the page.
"""

from dashboard.callbacks import attributions, audit, explore, projections

__all__ = ["attributions", "audit", "explore", "projections"]
