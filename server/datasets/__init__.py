"""Image datasets on disk: built-ins, zip and multi-image uploads, thumbnails (issue 5)."""

from server.datasets.store import DatasetInfo, DatasetStore, ImageRecord

__all__ = ["DatasetInfo", "DatasetStore", "ImageRecord"]
