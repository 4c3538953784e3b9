"""Response schemas of the health probes."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel


class HealthOut(BaseModel):
    status: Literal["ok"]


class ReadyOut(BaseModel):
    status: Literal["ready", "loading", "shutting down"]
    default_model: str | None = None
    device: str | None = None
    detail: str | None = None
