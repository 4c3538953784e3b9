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
    server: _MirrorServer

    def do_GET(self) -> None:
        self.server.requests.append(self.path)
        if self.server.cut_after is None:
            super().do_GET()
            return
        data = Path(self.translate_path(self.path)).read_bytes()  # announced in full, cut short
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[: self.server.cut_after])
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:  # keep pytest's output clean
        pass


class _MirrorServer(ThreadingHTTPServer):
    requests: list[str]  # the paths asked for so far
    cut_after: int | None  # send only this many bytes of each file (a connection that drops)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving(folder: Path) -> Iterator[_MirrorServer]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) from a thread."""
    server = _MirrorServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(folder)))
    server.requests, server.cut_after = [], None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
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
    server: _MirrorServer
    official: dict[str, str] = field(default_factory=dict)  # model id -> the "official" URL the zoo names

    @property
    def requests(self) -> list[str]:
        return self.server.requests

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


def mirrored_api(tmp_path: Path, allow_downloads: bool | None = None):
    """A TestClient (to use as a context manager) of the API over the environment's settings, which the
    ``weights_mirror`` fixture points at its models dir and mirror, with a zoo of its own; ``allow_downloads``
    sets CONVLENS_ALLOW_WEIGHT_DOWNLOADS (None: as the environment says)."""
    from fastapi.testclient import TestClient

    from server.api.app import create_app
    from server.config import get_settings
    from server.services import Services
    from server.zoo.manager import ZooManager

    update: dict[str, object] = {"data_dir": tmp_path / "data", "preload_default_model": False}
    if allow_downloads is not None:
        update["allow_weight_downloads"] = allow_downloads
    settings = get_settings().model_copy(update=update)
    return TestClient(create_app(services=Services.from_settings(settings, zoo=ZooManager("cpu"))))
