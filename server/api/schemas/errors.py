"""The body of every error response: ``{"detail": message, "error": type}`` (422s add ``errors``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorOut(BaseModel):
    detail: str = Field(description="a readable message naming what to change")
    error: str = Field(description="the error type, e.g. NotFoundError, ValidationError, ServiceBusyError")
    errors: list[dict[str, Any]] | None = Field(
        None, description="422 request validation only: one entry per invalid field"
    )
