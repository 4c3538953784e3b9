"""The dashboard container's health probe: ``python -m dashboard.healthcheck`` exits 0 when the dashboard
answers its home page on ``CONVLENS_DASHBOARD_PORT`` (the image has no server code to run the API's probe)."""

from __future__ import annotations

import sys
import urllib.request

from dashboard.settings import get_settings


def dashboard_ok(port: int, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False


def main() -> int:
    ok = dashboard_ok(get_settings().dashboard_port)
    print(f"dashboard: {'healthy' if ok else 'unhealthy'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
