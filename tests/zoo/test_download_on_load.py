"""CONVLENS_ALLOW_WEIGHT_DOWNLOADS=true with no network: loading a torchvision model without local weights is a
DownloadFailedError (502) that says how else to get them, not an internal error (nothing reaches the internet)."""

from __future__ import annotations

import urllib.error

import pytest
import torchvision

from server.errors import DownloadFailedError
from server.zoo import builtin
from server.zoo.registry import WeightsLocation


def test_a_failed_download_on_load_is_a_readable_502(monkeypatch):
    def offline(self, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.models.WeightsEnum, "get_state_dict", offline)
    model = torchvision.models.squeezenet1_1(weights=None)

    with pytest.raises(DownloadFailedError) as info:
        builtin._torchvision_load("squeezenet1_1", model, WeightsLocation("available", None, "download"))

    assert info.value.status_code == 502
    message = info.value.message
    assert "Could not download the weights of 'squeezenet1_1'" in message and "name resolution" in message
    assert "convlens weights pull squeezenet1_1" in message
