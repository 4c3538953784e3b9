"""Helpers for looking inside Dash component trees in tests (not a test module)."""

from __future__ import annotations

import base64

from dash import no_update


def texts(component) -> str:
    """All text inside a component tree."""
    if component is None or component is no_update:
        return ""
    if isinstance(component, str | int | float):
        return str(component)
    if isinstance(component, list | tuple):
        return "".join(texts(c) for c in component)
    return texts(getattr(component, "children", None))


def find(component, predicate):
    if isinstance(component, list | tuple):
        for c in component:
            yield from find(c, predicate)
        return
    if component is None or isinstance(component, str | int | float):
        return
    if predicate(component):
        yield component
    yield from find(getattr(component, "children", None), predicate)


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode()
