"""Keep server paths and user names out of what clients see (issue 12).

:func:`redact` rewrites a message for a response: the models and data folders become the setting that
names them (``CONVLENS_MODELS_DIR/digits_cnn/final.safetensors``), and any other absolute
file path - the home directory's torch cache, site-packages - is cut to its file name
(``.../vgg16-397923af.pth``), so no user name travels either. URL paths of
this API (``/api/...``) are left alone. The API applies it to every error body and to the messages it
passes on (weights status, job errors); stack traces go to the server log only.
"""

from __future__ import annotations

import re
from pathlib import Path

from server.config import Settings

# an absolute path: a '/' not inside a word, URL or relative path, then two or more segments
_ABS_PATH = re.compile(r"(?<![\w.:/~-])/(?!api/)(?:[^\s/'\"`:,;()<>\[\]{}]+/)+[^\s/'\"`:,;()<>\[\]{}]*")


def _roots(settings: Settings | None) -> list[tuple[str, str]]:
    roots: list[tuple[str, str]] = []
    if settings is not None:
        for folder, name in (
            (settings.models_dir, "CONVLENS_MODELS_DIR"),
            (settings.data_dir, "CONVLENS_DATA_DIR"),
        ):
            for form in {str(folder), str(Path(folder).resolve())}:
                roots.append((form.rstrip("/"), name))
    return sorted(roots, key=lambda r: -len(r[0]))  # the most specific folder first


def redact(message: str, settings: Settings | None = None) -> str:
    """``message`` without absolute server paths (hence without the user name of a home directory)."""
    if "/" not in message:
        return message
    for root, name in _roots(settings):
        message = re.sub(re.escape(root) + r"(?=/|\b|$)", name, message)
    return _ABS_PATH.sub(lambda m: ".../" + m.group(0).rstrip("/").rsplit("/", 1)[-1], message)
