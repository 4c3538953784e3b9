"""The dashboard's settings read the same CONVLENS_* variables as the server's, with the same defaults."""

from __future__ import annotations

import pytest

from dashboard.settings import REPO_ROOT, DashboardSettings, get_settings
from server.config import Settings

SHARED = [
    "api_host",
    "api_port",
    "api_url",
    "api_token",
    "dashboard_host",
    "dashboard_port",
    "dashboard_debug",
    "default_model",
    "data_dir",
]
ENV = {
    "CONVLENS_API_HOST": "api.internal",
    "CONVLENS_API_PORT": "9001",
    "CONVLENS_API_TOKEN": "s3cret",
    "CONVLENS_DASHBOARD_HOST": "0.0.0.0",
    "CONVLENS_DASHBOARD_PORT": "8123",
    "CONVLENS_DASHBOARD_DEBUG": "true",
    "CONVLENS_DEFAULT_MODEL": "digits_cnn",
    "CONVLENS_DATA_DIR": "/tmp/convlens-data",
}


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    for name in [*ENV, "CONVLENS_API_URL", "CONVLENS_STATIC_DIR"]:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no .env file is read
    return monkeypatch


def test_every_shared_knob_has_the_servers_default(clean_env):
    dash_s, server_s = DashboardSettings(), Settings()
    assert set(SHARED) <= set(DashboardSettings.model_fields)
    assert {k: getattr(dash_s, k) for k in SHARED} == {k: getattr(server_s, k) for k in SHARED}
    assert dash_s.resolved_api_url == server_s.resolved_api_url == "http://127.0.0.1:8000"
    assert dash_s.static_dir == REPO_ROOT / "static" and (dash_s.static_dir / "convlens.css").is_file()


def test_both_read_the_same_environment(clean_env):
    for name, value in ENV.items():
        clean_env.setenv(name, value)
    dash_s, server_s = DashboardSettings(), Settings()
    assert {k: getattr(dash_s, k) for k in SHARED} == {k: getattr(server_s, k) for k in SHARED}
    assert dash_s.resolved_api_url == "http://api.internal:9001" and dash_s.dashboard_debug is True
    clean_env.setenv("CONVLENS_API_URL", "http://api:8000/")
    assert DashboardSettings().resolved_api_url == Settings().resolved_api_url == "http://api:8000"


def test_settings_are_read_once_until_the_cache_is_cleared(clean_env):
    get_settings.cache_clear()
    try:
        first = get_settings()
        clean_env.setenv("CONVLENS_DASHBOARD_PORT", "8999")
        assert get_settings() is first
        get_settings.cache_clear()
        assert get_settings().dashboard_port == 8999
    finally:
        get_settings.cache_clear()


def test_both_read_the_api_token_from_a_secrets_file_and_the_environment_wins(clean_env, tmp_path):
    """Compose's `secrets:` mount /run/secrets/convlens_api_token; the token then never is in the environment."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "convlens_api_token").write_text("from-a-file\n")
    dash_s, server_s = DashboardSettings(_secrets_dir=secrets), Settings(_secrets_dir=secrets)
    assert dash_s.api_token == server_s.api_token == "from-a-file"
    clean_env.setenv("CONVLENS_API_TOKEN", "from-the-env")
    assert (
        DashboardSettings(_secrets_dir=secrets).api_token
        == Settings(_secrets_dir=secrets).api_token
        == ("from-the-env")
    )
    assert DashboardSettings.model_config["secrets_dir"] == Settings.model_config["secrets_dir"]
