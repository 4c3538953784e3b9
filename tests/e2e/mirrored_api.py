"""``python -m tests.e2e.mirrored_api``: the API (``python -m server``) with the official weight URLs of
``CONVLENS_TEST_OFFICIAL_URLS`` (JSON, model id -> URL), so that a local mirror's seeded files, whose names
carry their own SHA-256 prefix, pass as the official ones (tests/weights_mirror.py); a download when a model
loads (CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true) fails as it does offline, so that nothing reaches the internet.
Test-only."""

from __future__ import annotations

import json
import os
import urllib.error

import torchvision

from server import __main__ as api
from server.zoo import pull

_OFFICIAL = json.loads(os.environ.get("CONVLENS_TEST_OFFICIAL_URLS", "{}"))
_real_official_url = pull.official_url


def _official_url(model_id: str) -> str:
    return _OFFICIAL.get(model_id) or _real_official_url(model_id)


def _offline(self, *args, **kwargs):
    raise urllib.error.URLError("this test's API reaches no network")


if __name__ == "__main__":
    pull.official_url = _official_url
    torchvision.models.WeightsEnum.get_state_dict = _offline
    api.main()
