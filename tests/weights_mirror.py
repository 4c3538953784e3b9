"""A lab mirror for `convlens weights pull` tests: http.server on 127.0.0.1 (port 0) in a thread, serving real
torchvision state dicts (random, seeded) under file names that carry a SHA-256 prefix of the test's choice."""

from __future__ import annotations

import functools
import hashlib
import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import torch

OFFICIAL_BASE = "https://download.pytorch.org/models"  # never reached: the tests set a mirror


class _Handler(SimpleHTTPRequestHandler):
    def do_GET(self) -> None:
        self.server.requests.append(self.path)  # type: ignore[attr-defined]
        super().do_GET()

    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass


@contextmanager
def serving(folder: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve ``folder`` over HTTP; yields (base URL, the paths requested so far)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    server.requests = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", server.requests  # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def seeded_state(model_id: str) -> dict[str, torch.Tensor]:
    """The state dict of torchvision's ``model_id`` built with random weights from seed 0."""
    import torchvision

    torch.manual_seed(0)
    return torchvision.models.get_model(model_id, weights=None).state_dict()


@dataclass
class Mirror:
    base_url: str  # what CONVLENS_WEIGHTS_MIRROR is set to
    folder: Path  # the files served under base_url
    models_dir: Path  # CONVLENS_MODELS_DIR
    requests: list[str]
    official: dict[str, str] = field(default_factory=dict)  # model id -> the "official" URL the zoo names

    def publish(self, model_id: str, sha256_prefix: str | None = None) -> tuple[dict[str, torch.Tensor], str]:
        """Serve a seeded state dict of ``model_id`` under ``<model_id>-<prefix>.pth`` (its true SHA-256
        prefix unless one is given) and make that the official file name; returns (state, sha256)."""
        state = seeded_state(model_id)
        buffer = io.BytesIO()
        torch.save(state, buffer)
        data = buffer.getvalue()
        sha256 = hashlib.sha256(data).hexdigest()
        name = f"{model_id}-{sha256_prefix or sha256[:8]}.pth"
        (self.folder / name).write_bytes(data)
        self.official[model_id] = f"{OFFICIAL_BASE}/{name}"
        return state, sha256
