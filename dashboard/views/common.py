"""Small pieces every page's views share: the untrained toggle, picker defaults and options."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def is_untrained(toggle: list[str] | None) -> bool:
    """The value of the explore page's 'random weights (untrained)' checklist."""
    return "untrained" in (toggle or [])


def precision_of(toggle: list[str] | None) -> str:
    """The value of the explore page's 'fast precision' checklist: "fast" or "exact"."""
    return "fast" if "fast" in (toggle or []) else "exact"


def pick(wanted: Any, ids: Sequence[Any], preferred: Any = None) -> Any:
    """The picker's value: ``wanted`` (a link's) when it is an option, else ``preferred``, else the first."""
    if wanted in ids:
        return wanted
    if preferred in ids:
        return preferred
    return ids[0] if ids else None


def model_option(model: dict[str, Any]) -> dict[str, Any]:
    """A model picker option from ``GET /models``: ``id · architecture``."""
    return {"label": f"{model['id']} · {model['architecture']}", "value": model["id"]}
