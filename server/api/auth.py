"""Optional API token for shared lab machines (``CONVLENS_API_TOKEN``).

When a token is set, every request but the health probes must carry it, either as
``Authorization: Bearer <token>`` or as ``X-API-Token: <token>``; otherwise the answer is a 401 with
the usual ``{"detail", "error"}`` JSON body. CORS preflights (``OPTIONS``) are answered by the CORS
middleware outside this one, since browsers never send credentials on them.
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def request_token(headers: dict[bytes, bytes]) -> str | None:
    """The token a request carries, if any."""
    auth = headers.get(b"authorization", b"").decode("latin-1").strip()
    scheme, _, value = auth.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    token = headers.get(b"x-api-token", b"").decode("latin-1").strip()
    return token or None


class TokenAuthMiddleware:
    """Pure ASGI middleware (no body buffering, so streaming responses pass untouched)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self._token = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or scope["method"] == "OPTIONS":
            await self.app(scope, receive, send)
            return
        token = request_token(dict(scope["headers"]))
        if token is not None and hmac.compare_digest(token.encode(), self._token):
            await self.app(scope, receive, send)
            return
        detail = (
            "This ConvLens API needs its token: send 'Authorization: Bearer <token>' or 'X-API-Token: <token>'."
            if token is None
            else "The API token is wrong."
        )
        body = json.dumps({"detail": detail, "error": "Unauthorized"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="convlens"'),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
