"""Container health probes: ``python -m server.healthcheck api|worker`` exits 0 when healthy.

The API is probed over HTTP on the port its settings name; a Celery worker is asked over the broker to
answer a ping addressed to this host's node name. (The dashboard's image has no server code: its probe is
``python -m dashboard.healthcheck``.)
"""

from __future__ import annotations

import socket
import sys
import urllib.request

from server.config import get_settings


def http_ok(url: str, timeout: float = 5.0) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return 200 <= resp.status < 300
    except OSError:
        return False


def worker_ok(timeout: float = 5.0) -> bool:
    from server.jobs_redis import make_celery

    app = make_celery(get_settings())
    try:
        replies = app.control.ping(destination=[f"celery@{socket.gethostname()}"], timeout=timeout)
    finally:
        app.close()
    return bool(replies)


def main(argv: list[str]) -> int:
    s = get_settings()
    what = argv[0] if argv else "api"
    if what == "api":
        ok = http_ok(f"http://127.0.0.1:{s.api_port}/healthz")
    elif what == "worker":
        ok = worker_ok()
    else:
        print(f"usage: python -m server.healthcheck api|worker (got {what!r})", file=sys.stderr)
        return 2
    print(f"{what}: {'healthy' if ok else 'unhealthy'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
