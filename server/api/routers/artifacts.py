"""Generated files (PNG maps, .npy arrays)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import FileResponse, Response
from starlette.background import BackgroundTask

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
    return FileResponse(
        path,
        media_type=media,
        headers={"Cache-Control": "max-age=86400"},
        background=BackgroundTask(artifacts.budget.release, entry),
    )
