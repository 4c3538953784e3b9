"""What the routes declare in the OpenAPI document beyond their response model (issue 12): the error
statuses each can answer, all with the one :class:`ErrorOut` body, and the media types of file replies.

Routers pass ``responses=error_responses(...)`` once for all their routes; a route that answers a file
adds ``responses=file_response(...)``. Nothing else in the API writes ``responses=`` by hand.
"""

from __future__ import annotations

from typing import Any

from server.api.schemas.errors import ErrorOut

# What each error status means; every body is an ErrorOut.
_MEANING = {
    400: "The body cannot be parsed (malformed JSON or multipart).",
    401: "The API token is missing or wrong (only when CONVLENS_API_TOKEN is set).",
    403: "Not permitted by this server's settings (the message names the setting, e.g. "
    "CONVLENS_ALLOW_WEIGHT_DOWNLOADS).",
    404: "Unknown model, layer, dataset, job or file (the message names the closest valid names).",
    409: "Conflicts with stored state (weights unavailable, a name already taken, a finished job).",
    413: "The upload, image or archive is over the configured limits.",
    415: "The upload is not an image (or archive).",
    422: "Invalid parameters or data (the message says which and why).",
    503: "The model's queue is full (CONVLENS_MAX_QUEUE) or the server is shutting down; "
    "retry after Retry-After seconds.",
    507: "Not enough model memory (CONVLENS_MODEL_MEMORY_BYTES) or disk for the result.",
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
# Any route but the health probes: 401 when an API token is set, 503 while the server shuts down.
ALWAYS = (401, 503)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a router whose routes can answer ``statuses`` (plus :data:`ALWAYS`)."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({*ALWAYS, *statuses}):
        entry: dict[str, Any] = {"model": ErrorOut, "description": _MEANING[status]}
        if status == 503:
            entry["headers"] = _RETRY_AFTER
        out[status] = entry
    return out


def file_response(*media_types: str, description: str = "the file") -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route whose 200 is a file of one of ``media_types`` (not JSON)."""
    binary = {"schema": {"type": "string", "format": "binary"}}
    return {200: {"description": description, "content": {m: binary for m in media_types}}}


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``anyOf: [X, {type: null}]`` -> ``X``: an optional multipart field is left out, never sent as null.
    A file is never empty (an empty upload is a 415)."""
    options = schema.get("anyOf")
    if isinstance(options, list):
        rest = [o for o in options if o != {"type": "null"}]
        if len(rest) == 1 and len(rest) < len(options):
            schema = {**{k: v for k, v in schema.items() if k != "anyOf"}, **rest[0]}
    if _is_file(schema):
        schema = {**schema, "minLength": 1}
    if isinstance(schema.get("items"), dict) and _is_file(schema["items"]):
        schema = {**schema, "items": {**schema["items"], "minLength": 1}}
    return schema


def _is_file(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "binary" or schema.get("contentMediaType") == "application/octet-stream"


def multipart_without_nulls(openapi: dict[str, Any]) -> dict[str, Any]:
    """The document with every multipart form's optional fields stated as their type: a form part
    cannot be null (clients generated from the schema would send the text 'null' or no file), and
    every file has at least one byte."""
    components = openapi.get("components", {}).get("schemas", {})
    for path_item in openapi.get("paths", {}).values():
        for op in path_item.values():
            content = (op.get("requestBody") or {}).get("content", {})
            ref = content.get("multipart/form-data", {}).get("schema", {}).get("$ref")
            if ref:
                body = components[ref.rsplit("/", 1)[-1]]
                body["properties"] = {k: _not_null(v) for k, v in body.get("properties", {}).items()}
    return openapi
