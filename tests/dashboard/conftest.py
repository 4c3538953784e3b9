"""Callbacks run against the real API app in-process (Starlette TestClient), no browser and no network."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from dashboard import api_client
from dashboard.api_client import ApiClient
from server.api.app import create_app
from server.config import Settings


@pytest.fixture
def api(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Iterator[ApiClient]:
    """The dashboard's API client wired to a real app; the dashboard sees the same settings."""
    import dashboard.callbacks.explore as explore

    monkeypatch.setattr(explore, "get_settings", lambda: settings)
    with TestClient(create_app(settings)) as http:
        client = ApiClient("http://testserver", http=http)
        api_client.set_client(client)
        try:
            yield client
        finally:
            api_client.set_client(None)
