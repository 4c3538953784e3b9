"""No API route can register a model or make the server import code (issue 18): every route, called
with every name a user could send, leaves the registry, the catalogue and sys.modules as they were."""

from __future__ import annotations

import re
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from server.api.app import create_app
from server.config import REPO_ROOT, Settings
from server.services import Services
from server.zoo.registry import list_specs

PAYLOAD = {
    "id": "evil",
    "model": "evil:Evil",
    "module": "evil:Evil",
    "weights": "evil.pt",
    "exported": "evil.pt2",
    "torchscript": "evil.pt",
    "architecture": "evil:Evil",
    "checkpoints": ["evil:Evil"],
    "dataset": "evil:Evil",
    "layer": "evil:Evil",
}


def test_no_route_registers_a_model_or_imports_code(tmp_path: Path, zoo):
    marker = tmp_path / "imported"
    code = tmp_path / "models" / "code"
    code.mkdir(parents=True)
    (code / "evil.py").write_text(f"open({str(marker)!r}, 'w').close()\nclass Evil: pass\n")
    settings = Settings(
        models_dir=tmp_path / "models", data_dir=tmp_path / "data", preload_default_model=False
    )
    app = create_app(services=Services.from_settings(settings, zoo=zoo))
    ids = sorted(s.card.id for s in list_specs())
    modules = set(sys.modules)
    calls = 0
    with TestClient(app, raise_server_exceptions=False) as client:
        for route_path, operations in app.openapi()["paths"].items():
            path = re.sub(r"\{[^}]+\}", "evil:Evil", route_path)
            for method in operations:
                client.request(
                    method, path, params={"untrained": "true", "module": "evil:Evil"}, json=PAYLOAD
                )
                client.request(
                    method,
                    path,
                    data={k: str(v) for k, v in PAYLOAD.items()},
                    files={"image": ("evil.py", b"x")},
                )
                calls += 2
    assert calls > 40  # every route of the OpenAPI schema was tried
    assert not marker.exists()
    assert not (tmp_path / "models" / "catalogue.toml").exists()
    assert sorted(s.card.id for s in list_specs()) == ids
    assert not {m for m in set(sys.modules) - modules if "evil" in m or m.startswith("convlens_user_code")}


def test_the_api_never_reaches_the_code_that_adds_or_imports_models():
    """The functions that write the catalogue or import user code are not imported by the API layer."""
    api = REPO_ROOT / "server" / "api"
    for source in api.rglob("*.py"):
        text = source.read_text()
        for name in (
            "server.zoo.adding",
            "server.zoo.user_code",
            "register_catalogue_models",
            "register_model",
            "importlib",
        ):
            assert name not in text, f"{source.relative_to(REPO_ROOT)} mentions {name}"
