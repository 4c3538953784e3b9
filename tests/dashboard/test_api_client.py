"""The API client: readable errors (the API's detail, or why it cannot be reached) and the token header."""

from __future__ import annotations

import pytest
from dash import html

from dashboard.api_client import ApiClient, ApiError


def test_unreachable_api_gives_a_readable_message():
    from dashboard.api_client import ApiClient
    from tests.processes import free_port

    client = ApiClient(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ApiError, match="Cannot reach the ConvLens API"):
        client.models()


def test_error_detail_and_token(api, settings):
    with pytest.raises(ApiError) as info:
        api.layers("resnet9000")
    assert info.value.status == 404 and "Unknown model 'resnet9000'" in str(info.value)
    assert isinstance(html.Div(str(info.value)), html.Div)
    assert ApiClient("http://x", token="t0k")._http.headers["authorization"] == "Bearer t0k"
