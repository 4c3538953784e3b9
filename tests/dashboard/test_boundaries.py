"""The dashboard is a client of the API: no module of it imports the server's code (STYLE.md section 4)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import dashboard

PACKAGE = Path(dashboard.__file__).resolve().parent
REPO = PACKAGE.parent
MAX_LINES = 500


def dashboard_modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def imported_names(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_dashboard_module_imports_server_in_its_source():
    offenders = {
        str(path.relative_to(REPO)): name
        for path in dashboard_modules()
        for name in imported_names(path)
        if name == "server" or name.startswith("server.")
    }
    assert offenders == {}
    assert len(dashboard_modules()) > 20  # the scan saw the package


def test_importing_every_dashboard_module_loads_nothing_of_server():
    """The app (its pages and callbacks) and every other module, in a fresh interpreter."""
    script = """
import importlib, json, pkgutil, sys
import dashboard
from dashboard.app import create_app
create_app()
names = [m.name for m in pkgutil.walk_packages(dashboard.__path__, "dashboard.") if ".pages." not in m.name]
for name in names:
    importlib.import_module(name)
print(json.dumps({"file": dashboard.__file__, "modules": names,
                  "server": sorted(m for m in sys.modules if m == "server" or m.startswith("server."))}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert Path(report["file"]).resolve().parent == PACKAGE  # this checkout's dashboard, not another one
    assert {"dashboard.views.explore", "dashboard.callbacks.audit", "dashboard.settings"} <= set(
        report["modules"]
    )
    assert report["server"] == []


def test_no_dashboard_module_is_over_500_lines():
    long = {
        str(p.relative_to(REPO)): n
        for p in dashboard_modules()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}
