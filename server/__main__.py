"""``python -m server``: serve the API with uvicorn on CONVLENS_API_HOST:CONVLENS_API_PORT."""

from __future__ import annotations

import logging

import uvicorn

from server.config import get_settings


def main() -> None:
    s = get_settings()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    print(
        f"ConvLens API on http://{s.api_host}:{s.api_port}  (docs: http://{s.api_host}:{s.api_port}/docs)",
        flush=True,
    )
    # SIGTERM: uvicorn stops accepting connections and waits up to the timeout for running requests;
    # the app refuses new work meanwhile and marks its jobs interrupted (server/api/shutdown.py).
    uvicorn.run(
        "server.api.app:create_app",
        factory=True,
        host=s.api_host,
        port=s.api_port,
        log_level="info",
        timeout_graceful_shutdown=int(max(1, s.shutdown_timeout_seconds)),
    )


if __name__ == "__main__":
    main()
