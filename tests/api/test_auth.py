"""The optional API token (CONVLENS_API_TOKEN) and CORS restricted to the dashboard's origin."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from server.api.app import create_app
from server.config import Settings

TOKEN = "s3cret-lab-token"
DASHBOARD = "http://lab-box.example:8050"


@pytest.fixture
def secured(settings: Settings):
    s = settings.model_copy(update={"api_token": TOKEN, "cors_origins": [DASHBOARD]})
    with TestClient(create_app(s)) as c:
        yield c


@pytest.mark.parametrize(
    "path", ["/api/v1/models", "/api/v1/jobs", "/api/v1/jobs/nope", "/docs", "/openapi.json"]
)
def test_token_set_requests_without_it_get_401_with_a_readable_message(secured, path):
    r = secured.get(path)
    assert r.status_code == 401
    body = r.json()
    assert body["error"] == "Unauthorized"
    assert "Authorization: Bearer" in body["detail"] and "X-API-Token" in body["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")


def test_token_set_wrong_token_gets_401_that_says_so(secured):
    for headers in ({"Authorization": "Bearer wrong"}, {"X-API-Token": "wrong"}, {"Authorization": TOKEN}):
        r = secured.get("/api/v1/models", headers=headers)
        assert r.status_code == 401, headers
    assert "wrong" in secured.get("/api/v1/models", headers={"X-API-Token": "nope"}).json()["detail"]


def test_token_set_health_probes_still_answer(secured):
    assert secured.get("/healthz").json() == {"status": "ok"}
    assert secured.get("/readyz").status_code == 200  # preload is off in the test settings


@pytest.mark.parametrize("headers", [{"Authorization": f"Bearer {TOKEN}"}, {"X-API-Token": TOKEN}])
def test_token_set_either_header_is_accepted(secured, headers):
    r = secured.get("/api/v1/models", headers=headers)
    assert r.status_code == 200
    assert any(m["id"] == "digits_cnn" for m in r.json())
    assert secured.get("/api/v1/jobs/unknown-job", headers=headers).status_code == 404  # reaches the router


def test_token_unset_everything_works_without_it(client):
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/models").status_code == 200
    assert client.get("/api/v1/jobs").status_code == 200
    assert client.get("/openapi.json").status_code == 200


def test_cors_allows_only_the_dashboard_origin_even_on_401(secured):
    ok = secured.get("/api/v1/models", headers={"Origin": DASHBOARD, "X-API-Token": TOKEN})
    assert ok.headers["access-control-allow-origin"] == DASHBOARD
    denied = secured.get("/api/v1/models", headers={"Origin": DASHBOARD})
    assert denied.status_code == 401
    assert denied.headers["access-control-allow-origin"] == DASHBOARD  # the browser can read the 401
    other = secured.get("/api/v1/models", headers={"Origin": "http://evil.example", "X-API-Token": TOKEN})
    assert "access-control-allow-origin" not in other.headers


def test_cors_preflight_needs_no_token_and_rejects_other_origins(secured):
    pre = {"Access-Control-Request-Method": "GET", "Access-Control-Request-Headers": "x-api-token"}
    ok = secured.options("/api/v1/models", headers={"Origin": DASHBOARD, **pre})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == DASHBOARD
    bad = secured.options("/api/v1/models", headers={"Origin": "http://evil.example", **pre})
    assert bad.status_code == 400


def test_cors_defaults_to_the_dashboard_host_and_port(client):
    s: Settings = client.app.state.services.settings
    origin = f"http://{s.dashboard_host}:{s.dashboard_port}"
    r = client.get("/healthz", headers={"Origin": origin})
    assert r.headers["access-control-allow-origin"] == origin
    assert (
        "access-control-allow-origin"
        not in client.get("/healthz", headers={"Origin": "http://x.example"}).headers
    )
