"""What every job task needs from its process: the settings of the API that submitted it, and the zoo."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from server.config import Settings, get_settings
from server.zoo.manager import ZooManager, shared_zoo


def settings_for(params: dict[str, Any]) -> Settings:
    """The environment's settings, with the data directory of the API that submitted the job."""
    settings = get_settings()
    if params.get("data_dir"):
        settings = settings.model_copy(update={"data_dir": Path(params["data_dir"])})
    return settings


def zoo_for(settings: Settings) -> ZooManager:
    """The process-wide zoo, shared with the API when the job runs in-process."""
    return shared_zoo(settings.device)
