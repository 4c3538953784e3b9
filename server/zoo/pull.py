"""``convlens weights pull``: the official weights of the zoo's torchvision models, downloaded only when a user
runs the command, checked against the SHA-256 prefix their file name carries, stored as safetensors under
``models/`` and named under ``[weights]`` in the catalogue, where the zoo finds them (issue 17).

The official file name is kept (``resnet18-f37072fd.pth`` is stored as ``resnet18-f37072fd.safetensors``);
``CONVLENS_WEIGHTS_MIRROR`` replaces the official base URL by a lab mirror's (``<mirror>/resnet18-f37072fd.pth``).
The download, the hash check, the conversion and a dry-run load into the zoo's architecture all work on
temporary files in ``models/``; only then is the file moved into place and the catalogue rewritten
(atomically), so a failure leaves neither a file nor an entry. The server calls it only through
:mod:`server.weight_pulls`, a job that ``CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true`` permits.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file

from server.config import Settings
from server.errors import ChecksumMismatchError, DownloadFailedError, InvalidInputError
from server.zoo.adding import add_weights_file, weights_file_named
from server.zoo.builtin import BUILTIN_SPECS, TORCHVISION_MODELS, torchvision_default_weights
from server.zoo.checkpoints import read_state_dict
from server.zoo.registry import WeightsLocation

_CHUNK = 1 << 20
_SCHEMES = ("http", "https", "file")  # file: a mirror on a shared disk

OnBytes = Callable[[int, int | None], None]
"""Told (bytes received so far, bytes announced or None) after every chunk of a download."""


@dataclass(frozen=True)
class OfficialWeights:
    """Where a model's official weights are published, and the hash their file name promises."""

    model_id: str
    url: str
    sha256_prefix: str

    @property
    def file_name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def stored_name(self) -> str:
        return Path(self.file_name).with_suffix(".safetensors").name

    def source_url(self, mirror: str) -> str:
        """The official URL, or the same file name under ``mirror`` when one is set."""
        return f"{mirror.rstrip('/')}/{self.file_name}" if mirror else self.url


@dataclass(frozen=True)
class Pulled:
    model_id: str
    path: Path  # the safetensors file under models/
    url: str  # where it came from
    sha256: str  # of the downloaded file
    already_there: bool  # registered before: nothing downloaded


def pullable_ids() -> list[str]:
    return list(TORCHVISION_MODELS)


def official_url(model_id: str) -> str:
    """The URL of torchvision's default weights for ``model_id`` (read from torchvision, no network)."""
    return str(torchvision_default_weights(model_id).url)


def official_weights(model_id: str) -> OfficialWeights:
    """The official weights of zoo model ``model_id``; an id that cannot be pulled is an InvalidInputError."""
    if model_id not in TORCHVISION_MODELS:
        raise InvalidInputError(
            f"'{model_id}' has no official weights to pull: choose among {', '.join(pullable_ids())}."
        )
    url = official_url(model_id)
    match = torch.hub.HASH_REGEX.search(url.rsplit("/", 1)[-1])
    if match is None or len(match.group(1)) < 8:
        raise InvalidInputError(f"The file name of {url} carries no SHA-256 prefix to check it against.")
    return OfficialWeights(model_id, url, match.group(1))


def is_pulled(weights: OfficialWeights, settings: Settings) -> bool:
    """Whether ``weights`` are stored under ``models/`` and named in the catalogue already."""
    target = settings.models_dir / weights.stored_name
    return weights_file_named(weights.model_id, weights.stored_name, settings) and target.is_file()


def pull(weights: OfficialWeights, settings: Settings, on_bytes: OnBytes | None = None) -> Pulled:
    """Download, check, convert, dry-run and register ``weights``; one already registered is left alone.
    ``on_bytes`` follows the download."""
    models_dir = settings.models_dir
    target = models_dir / weights.stored_name
    url = weights.source_url(settings.weights_mirror)
    if is_pulled(weights, settings):
        return Pulled(weights.model_id, target, url, "", already_there=True)
    models_dir.mkdir(parents=True, exist_ok=True)
    downloaded, sha256 = download(url, models_dir, settings.weights_timeout_seconds, on_bytes)
    converted: Path | None = None
    try:
        if not sha256.startswith(weights.sha256_prefix):
            raise ChecksumMismatchError(
                f"Refused {url}: its SHA-256 is {sha256}, but its name promises one that starts with "
                f"{weights.sha256_prefix} (a corrupt or substituted file). Nothing was kept or registered."
            )
        converted = _to_safetensors(downloaded, models_dir)
        _dry_run(weights.model_id, converted)
        os.replace(converted, target)
        converted = None
        try:
            add_weights_file(weights.model_id, weights.stored_name, settings)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
    finally:
        downloaded.unlink(missing_ok=True)
        if converted is not None:
            converted.unlink(missing_ok=True)
    return Pulled(weights.model_id, target, url, sha256, already_there=False)


def download(url: str, folder: Path, timeout: float, on_bytes: OnBytes | None = None) -> tuple[Path, str]:
    """``url`` into a temporary file of ``folder`` -> (its path, its SHA-256); on any failure the file is
    removed and the error is a DownloadFailedError with a readable reason. ``on_bytes`` is told the bytes
    received after each chunk (and may raise to stop: the file is removed)."""
    if urllib.parse.urlsplit(url).scheme not in _SCHEMES:
        raise InvalidInputError(f"Cannot download '{url}': use an http, https or file URL.")
    fd, name = tempfile.mkstemp(prefix=".pull-", suffix=".part", dir=folder)
    path, digest, complete = Path(name), hashlib.sha256(), False
    request = urllib.request.Request(url, headers={"User-Agent": "convlens"})
    try:
        with os.fdopen(fd, "wb") as f, urllib.request.urlopen(request, timeout=timeout) as response:
            expected, received = response.headers.get("Content-Length"), 0
            total = int(expected) if expected is not None and expected.isdigit() else None
            if on_bytes is not None:
                on_bytes(0, total)
            while chunk := response.read(_CHUNK):
                f.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if on_bytes is not None:
                    on_bytes(received, total)
        if expected is not None and expected.isdigit() and received != int(expected):
            raise DownloadFailedError(
                f"Could not download {url}: the connection ended after {received:,} of {int(expected):,} bytes."
            )
        complete = True
    except urllib.error.HTTPError as exc:
        raise DownloadFailedError(f"Could not download {url}: HTTP {exc.code} {exc.reason}.") from None
    except urllib.error.URLError as exc:
        raise DownloadFailedError(f"Could not download {url}: {exc.reason}.") from None
    except (OSError, http.client.HTTPException) as exc:  # a cut connection, a timeout, a full disk
        raise DownloadFailedError(f"Could not download {url}: {type(exc).__name__}: {exc}.") from None
    finally:
        if not complete:
            path.unlink(missing_ok=True)
    return path, digest.hexdigest()


def _to_safetensors(path: Path, folder: Path) -> Path:
    """The state dict of the downloaded ``path`` (read with ``weights_only``) as a temporary safetensors file."""
    state = read_state_dict(path)
    tensors: dict[str, torch.Tensor] = {}
    storages: set[int] = set()
    for key, value in state.items():
        value = value.detach().contiguous()
        if value.untyped_storage().data_ptr() in storages:  # safetensors stores no shared memory
            value = value.clone()
        storages.add(value.untyped_storage().data_ptr())
        tensors[key] = value
    fd, name = tempfile.mkstemp(prefix=".pull-", suffix=".safetensors", dir=folder)
    os.close(fd)
    try:
        save_file(tensors, name)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _dry_run(model_id: str, path: Path) -> None:
    """Load ``path`` into the zoo's architecture for ``model_id`` exactly as the zoo will."""
    spec = next(s for s in BUILTIN_SPECS if s.card.id == model_id)
    try:
        spec.load_weights(spec.build(), WeightsLocation("available", path, "pulled weights"))
    except InvalidInputError as exc:
        raise InvalidInputError(
            f"The downloaded weights for '{model_id}' do not load: {exc.message}"
        ) from None
