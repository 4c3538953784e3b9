"""Views run against the real API app in-process (Starlette TestClient), no browser and no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dashboard import api_client
from dashboard.api_client import ApiClient
from dashboard.settings import get_settings
from server.api.app import create_app
from server.config import Settings


@pytest.fixture
def dashboard_env(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The dashboard reads its settings from the environment: it keeps uploads in the test's data dir."""
    monkeypatch.setenv("CONVLENS_DATA_DIR", str(settings.data_dir))
    get_settings.cache_clear()
    try:
        yield
    finally:
        get_settings.cache_clear()


@pytest.fixture
def api(settings: Settings, dashboard_env: None) -> Iterator[ApiClient]:
    """The dashboard's API client wired to a real app; the dashboard sees the same data dir."""
    with TestClient(create_app(settings)) as http:
        client = ApiClient("http://testserver", http=http)
        api_client.set_client(client)
        try:
            yield client
        finally:
            api_client.set_client(None)
