"""``python -m dashboard``: serve the dashboard on CONVLENS_DASHBOARD_HOST:PORT, talking to CONVLENS_API_URL.

Outside development the dashboard is served by waitress, a production WSGI server; only with
CONVLENS_DASHBOARD_DEBUG=true does it run Dash's own debug server (hot reload, dev tools).
"""

from __future__ import annotations

from dashboard.settings import get_settings


def main() -> None:
    from dashboard.app import create_app

    s = get_settings()
    app = create_app(s)
    print(
        f"ConvLens dashboard on http://{s.dashboard_host}:{s.dashboard_port}  (API: {s.resolved_api_url})",
        flush=True,
    )
    if s.dashboard_debug:
        app.run(host=s.dashboard_host, port=s.dashboard_port, debug=True)
        return
    from waitress import serve

    serve(app.server, host=s.dashboard_host, port=s.dashboard_port, threads=8, ident="ConvLens")


if __name__ == "__main__":
    main()
