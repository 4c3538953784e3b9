"""Dashboard pages: one module per page, layout only.

Convention for a new page (projections, audit, ...):
1. ``dashboard/pages/<name>.py`` calls ``dash.register_page(__name__, path="/<name>", name="<Nav label>",
   order=<n>)`` and defines ``layout(**query)`` returning components; query parameters of the URL
   arrive as keyword arguments, so a page can restore its state from a link (see ``explore.py``).
2. What the page shows is computed by plain functions in ``dashboard/views/<name>.py``; the callbacks in
   ``dashboard/callbacks/<name>.py`` (``dash.callback``, imported in ``dashboard/callbacks/__init__.py``)
   only wire the page's components to them.
3. Component ids are prefixed by the page or panel (``explore-``, ``detail-``...) to stay unique;
   pattern-matching ids use ``{"type": "<page>-<thing>", ...}``.
The navigation bar lists every registered page in ``order``; nothing else needs editing. A page of one
thing reached by links (``neuron.py``: ``path_template="/neuron/<model>/<layer>/<channel>"``, whose parts
arrive as ``layout``'s keyword arguments) is left out of the bar.
"""
