"""Dashboard pages: one module per page, layout only.

Convention for a new page (projections, audit, ...):
1. ``dashboard/pages/<name>.py`` calls ``dash.register_page(__name__, path="/<name>", name="<Nav label>",
   order=<n>)`` and defines ``layout(**query)`` returning components; query parameters of the URL
   arrive as keyword arguments, so a page can restore its state from a link (see ``explore.py``).
2. Callbacks live in ``dashboard/callbacks/<name>.py`` (use ``dash.callback``) and are imported in
   ``dashboard/callbacks/__init__.py``; they call ``dashboard.api_client`` and ``dashboard.figures``.
3. Component ids are prefixed by the page or panel (``explore-``, ``detail-``...) to stay unique;
   pattern-matching ids use ``{"type": "<page>-<thing>", ...}``.
The navigation bar lists every registered page in ``order``; nothing else needs editing.
"""
