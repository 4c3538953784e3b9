"""``python -m tests.e2e.mirrored_api``: the API (``python -m server``) with the official weight URLs of
``CONVLENS_TEST_OFFICIAL_URLS`` (JSON, model id -> URL), so that a local mirror's seeded files, whose names
carry their own SHA-256 prefix, pass as the official ones (tests/weights_mirror.py). Test-only."""

from __future__ import annotations

import json
import os

from server import __main__ as api
from server.zoo import pull

_OFFICIAL = json.loads(os.environ.get("CONVLENS_TEST_OFFICIAL_URLS", "{}"))
_real_official_url = pull.official_url


def _official_url(model_id: str) -> str:
    return _OFFICIAL.get(model_id) or _real_official_url(model_id)


if __name__ == "__main__":
    pull.official_url = _official_url
    api.main()
