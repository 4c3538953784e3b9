"""What the explore page shows, as the URL carries it: ``/?model=..&image=..&layer=..&filter=..&untrained=1``.

``ExploreState.from_query`` reads the query parameters Dash pages passes to a page's ``layout``;
``ExploreState.query`` writes them back. A copied link therefore reopens the same view.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urlencode

_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class ExploreState:
    model: str | None = None
    image: str | None = None  # an image id, see dashboard/images.py
    layer: str | None = None
    filter: int | None = None
    untrained: bool = False

    @classmethod
    def from_query(cls, params: dict[str, Any]) -> ExploreState:
        """Lenient: unknown or malformed values become None rather than an error page."""

        def text(key: str) -> str | None:
            value = params.get(key)
            if value is None:
                return None
            return str(value).strip() or None

        raw_filter = text("filter")
        return cls(
            model=text("model"),
            image=text("image"),
            layer=text("layer"),
            filter=int(raw_filter) if raw_filter and raw_filter.isdigit() else None,
            untrained=(text("untrained") or "").lower() in _TRUE,
        )

    def query(self) -> str:
        """The query string (with its leading ``?``), keys in a fixed order, empty values left out."""
        items: list[tuple[str, str]] = []
        for key in ("model", "image", "layer", "filter"):
            value = getattr(self, key)
            if value not in (None, ""):
                items.append((key, str(value)))
        if self.untrained:
            items.append(("untrained", "1"))
        return "?" + urlencode(items, safe=":") if items else ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
