"""The dashboard's knobs, read from the same ``CONVLENS_*`` environment variables as the API's settings.

The dashboard is a client of the API: it needs to know where the API is, where to serve itself, where to
keep uploads and which files it serves, and nothing else of the server. Names and defaults match
``server.config.Settings`` for every knob both read (``tests/dashboard/test_settings.py`` holds them
together), so one environment (a ``.env`` file, docker-compose's shared block) configures both.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
# Docker/compose secrets, as the server reads them: /run/secrets/convlens_api_token when the directory exists.
SECRETS_DIR = Path("/run/secrets")


def default_static_dir() -> Path:
    """The top-level ``static/`` of a checkout (or of the Docker image's /app); a wheel installs it under
    ``<prefix>/share/convlens/static`` (pyproject's data-files)."""
    checkout = REPO_ROOT / "static"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "convlens" / "static"


class DashboardSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="CONVLENS_",
        env_file=".env",
        extra="ignore",
        secrets_dir=SECRETS_DIR if SECRETS_DIR.is_dir() else None,
    )

    # Where the API is (the dashboard is its only client the browser sees; see dashboard/README.md)
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_url: str = ""  # how the dashboard reaches the API; defaults to http://api_host:api_port
    api_token: str = ""  # sent as a Bearer token when set; it never reaches the browser

    # Where the dashboard serves itself
    dashboard_host: str = "127.0.0.1"
    dashboard_port: int = 8050
    dashboard_debug: bool = False  # Dash's debug server (hot reload, dev tools) instead of waitress

    # What it shows and keeps
    default_model: str = "efficientnet_lite0"  # the explore page's model when a link names none
    data_dir: Path = REPO_ROOT / "data"  # uploads are kept under <data_dir>/dashboard/uploads/
    static_dir: Path = Field(default_factory=default_static_dir)  # stylesheets, scripts, sample images

    @property
    def resolved_api_url(self) -> str:
        return (self.api_url or f"http://{self.api_host}:{self.api_port}").rstrip("/")


@lru_cache
def get_settings() -> DashboardSettings:
    """The process's settings, read once (tests set the environment and call ``get_settings.cache_clear()``)."""
    return DashboardSettings()
