"""Generated files (PNG maps, .npy arrays)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from starlette.types import Receive, Scope, Send

from server.api.deps import ArtifactsDep, ExploreDep
from server.api.openapi import error_responses, file_response

router = APIRouter(prefix="/api/v1/artifacts", tags=["artifacts"], responses=error_responses(404, 422, 507))

_MEDIA = {
    ".png": "image/png",
    ".npy": "application/octet-stream",
    ".json": "application/json",
    ".html": "text/html",
    ".csv": "text/csv",
    ".svg": "image/svg+xml",
}


class PinnedFile(FileResponse):
    """A file response that releases its cache pin when the response ends, however it ends: a
    background task would not run when the client disconnects mid-file (the pin would leak)."""

    def __init__(self, *args: object, release: Callable[[], None], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


@router.get("/{key}/{name}", response_class=Response, responses=file_response(*_MEDIA.values()))
def artifact(key: str, name: str, artifacts: ArtifactsDep, explore: ExploreDep) -> Response:
    entry = artifacts.budget.acquire(artifacts.root / key / name)  # not evicted while it is sent
    try:
        if not artifacts.exists(key, name):
            data = explore.render_on_demand(key, name)
            if data is not None:
                artifacts.budget.release(entry)
                return Response(data, media_type="image/png", headers={"Cache-Control": "max-age=86400"})
        path = artifacts.path(key, name)
    except BaseException:
        artifacts.budget.release(entry)
        raise
    media = _MEDIA.get(path.suffix, "application/octet-stream")
    return PinnedFile(
        path,
        media_type=media,
        headers={"Cache-Control": "max-age=86400"},
        release=lambda: artifacts.budget.release(entry),
    )
