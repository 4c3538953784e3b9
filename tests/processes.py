"""Real server processes for end-to-end tests: started exactly as `make run` and the containers do."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from server.config import REPO_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within ``timeout``; always reaped."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def server_process(
    module: str, env: dict[str, str], ready_url: str, log_path: Path, timeout: float = 180.0
) -> Iterator[subprocess.Popen]:
    """Run ``python -m <module>`` with ``env`` until ``ready_url`` answers 200; always terminated on exit."""
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", module], cwd=REPO_ROOT, env=full_env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + timeout
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"{module} exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}"
                    )
                try:
                    if httpx.get(ready_url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"{module} not ready after {timeout}s:\n{log_path.read_text()[-3000:]}"
                    )
                time.sleep(0.25)
            yield proc
        finally:
            stop_process(proc)


@contextmanager
def api_and_dashboard(
    tmp_path: Path, timeout: float = 180.0, **dashboard_env: str
) -> Iterator[tuple[str, str]]:
    """A real API and a real dashboard talking to it, both over ``tmp_path``'s data dir (logs beside it);
    yields (API URL, dashboard URL) once both answer."""
    with api_process(tmp_path / "data", tmp_path / "logs") as api_url:
        port = free_port()
        env = {
            "CONVLENS_API_URL": api_url,
            "CONVLENS_DASHBOARD_PORT": str(port),
            "CONVLENS_DATA_DIR": str(tmp_path / "data"),
            **dashboard_env,
        }
        dash_url = f"http://127.0.0.1:{port}"
        with server_process("dashboard", env, f"{dash_url}/", tmp_path / "logs" / "dashboard.log", timeout):
            yield api_url, dash_url


@contextmanager
def api_process(data_dir: Path, log_dir: Path, **extra_env: str) -> Iterator[str]:
    """A real uvicorn API (`python -m server`) on a free port; yields its base URL once /readyz is 200."""
    with api_server(data_dir, log_dir, **extra_env) as (url, _proc):
        yield url


def rss_bytes(pid: int) -> int:
    """Resident memory of a process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


@contextmanager
def api_server(data_dir: Path, log_dir: Path, **extra_env: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """:func:`api_process`, yielding the process too (its pid, for memory measurements)."""
    port = free_port()
    env = {
        "CONVLENS_API_HOST": "127.0.0.1",
        "CONVLENS_API_PORT": str(port),
        "CONVLENS_DATA_DIR": str(data_dir),
        "CONVLENS_MODELS_DIR": str(REPO_ROOT / "models"),
        **extra_env,
    }
    url = f"http://127.0.0.1:{port}"
    with server_process("server", env, f"{url}/readyz", log_dir / f"api-{port}.log") as proc:
        yield url, proc
