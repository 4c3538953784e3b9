"""``python -m dashboard``: serve the dashboard on CONVLENS_DASHBOARD_HOST:PORT, talking to CONVLENS_API_URL."""

from __future__ import annotations

from server.config import get_settings


def main() -> None:
    from dashboard.app import create_app

    s = get_settings()
    app = create_app(s)
    print(
        f"ConvLens dashboard on http://{s.dashboard_host}:{s.dashboard_port}  (API: {s.resolved_api_url})",
        flush=True,
    )
    app.run(host=s.dashboard_host, port=s.dashboard_port, debug=s.dashboard_debug)


if __name__ == "__main__":
    main()
