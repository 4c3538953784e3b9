"""Core exception types. Each bad input maps to one type here and one HTTP status at the edge."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConvLensError(Exception):
    """Base class of every error ConvLens reports to a user."""

    status_code = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers  # extra response headers at the edge (e.g. Retry-After)


class NotFoundError(ConvLensError):
    """An unknown model, layer, dataset or job."""

    status_code = 404

    @classmethod
    def with_suggestions(cls, kind: str, name: str, valid: Iterable[str]) -> NotFoundError:
        valid = list(valid)
        close = difflib.get_close_matches(name, valid, n=5, cutoff=0.4)
        if not close:
            close = valid[:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        return cls(f"Unknown {kind} '{name}'.{hint}")


class InvalidInputError(ConvLensError):
    """A parameter or data that cannot be used (a value out of range, NaN features, ...)."""

    status_code = 422


class CorruptImageError(InvalidInputError):
    """An image that starts like an image but cannot be decoded (truncated, corrupt)."""


class UnsupportedMediaError(ConvLensError):
    """A file that is not an image (or archive) at all."""

    status_code = 415


class PayloadTooLargeError(ConvLensError):
    """An upload, image or archive over the configured limits (incl. decompression bombs)."""

    status_code = 413


class ForbiddenError(ConvLensError):
    """A request this server's settings do not permit (the message names the setting that would)."""

    status_code = 403


class ConflictError(ConvLensError):
    """A request that clashes with stored state (a dataset name already taken, a finished job...)."""

    status_code = 409


class WeightsUnavailableError(ConvLensError):
    """A model whose pretrained weights are not on this machine."""

    status_code = 409


class UnsafeCheckpointError(ConvLensError):
    """A checkpoint that would need arbitrary unpickling to load."""

    status_code = 422


class InsufficientStorageError(ConvLensError):
    """No room left: a model over the memory budget, or a disk that is full (ENOSPC)."""

    status_code = 507


class ServiceBusyError(ConvLensError):
    """Too many requests already waiting for a model: try again after ``retry_after`` seconds."""

    status_code = 503

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)})
        self.retry_after = retry_after


class DownloadFailedError(ConvLensError):
    """A download that did not complete: no network, an unknown host, an HTTP error, a cut connection."""

    status_code = 502


class ChecksumMismatchError(ConvLensError):
    """A downloaded file whose SHA-256 is not the one its source promises (refused, nothing kept)."""

    status_code = 502
