"""What the OpenAPI document says beyond what Litestar infers from the handlers.

Litestar documents a route's success and a generic 400. Every route here can also answer
other errors (auth, rate limit, not found, conflicts, upload limits), always with the one
error body; downloads are images or ZIPs (or a redirect to the store), not JSON. The table
below is the contract; ``tests/e2e/test_http_surface.py`` checks that each status a route
is seen to answer is listed here.
"""

from __future__ import annotations

from typing import get_args

from litestar.openapi.spec import (
    Components,
    OpenAPI,
    OpenAPIFormat,
    OpenAPIHeader,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    PathItem,
    Reference,
    Schema,
)

from pixtools.imaging import FORMATS
from pixtools.jobspec.ops import OutputFormat

ERROR_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["status_code", "detail", "extra"],
    properties={
        "status_code": Schema(type=OpenAPIType.INTEGER, description="the HTTP status again"),
        "detail": Schema(
            type=OpenAPIType.STRING,
            description="what is wrong; for a bad field it starts with the field's path",
        ),
        "extra": Schema(
            one_of=[
                Schema(type=OpenAPIType.OBJECT),
                Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
                Schema(type=OpenAPIType.NULL),
            ],
            description="`field` (the offending field), `retry_after`, `status`, ... or null",
        ),
    },
    description="The body of every error answer.",
)

REASONS = {
    400: "Bad request: the field named in `detail` and `extra.field`",
    401: "No valid API key (`WWW-Authenticate: Bearer`)",
    403: "The API key is not an admin key",
    404: "Not found (or not yours)",
    408: "The request body did not arrive in time",
    409: "Conflict with the current state (see `extra.status`)",
    413: "The upload is larger than PIXTOOLS_MAX_UPLOAD_BYTES",
    415: "The file is not a supported image format",
    422: "The image cannot be processed (corrupt, or over the pixel limit)",
    429: "Rate limit exceeded (`Retry-After` seconds)",
    503: "Too many uploads in progress (`Retry-After` seconds)",
}

JOB = "/api/v1/jobs/{job_id}"
DEAD_LETTERS = "/api/v1/admin/dead-letters"

#: Errors each operation can answer, beyond the 429 every /api/ route can. A route missing
#: here gets ``_default_errors``.
ERRORS: dict[tuple[str, str], tuple[int, ...]] = {
    ("post", "/api/v1/jobs"): (400, 401, 404, 408, 409, 413, 415, 422, 503),
    ("post", "/api/v1/uploads"): (401, 409),
    ("get", "/api/v1/jobs"): (400, 401),
    ("get", JOB): (400, 401, 404),
    ("get", JOB + "/outputs/{name}"): (400, 401, 404, 409),  # 400: a `proxy` not a bool
    ("get", JOB + "/archive"): (400, 401, 404, 409),
    ("get", JOB + "/outputs/{name}/preview"): (401, 404, 409),  # 409: output not succeeded
    ("get", JOB + "/source/preview"): (401, 404),
    ("post", JOB + "/retry"): (401, 404, 409),
    ("post", JOB + "/cancel"): (401, 404, 409),
    ("get", JOB + "/webhook-attempts"): (401, 404),
    ("get", DEAD_LETTERS): (400, 401, 403, 409),
    ("delete", DEAD_LETTERS): (400, 401, 403, 409),
    ("post", DEAD_LETTERS + "/replay"): (400, 401, 403, 408, 409, 413),
    ("get", "/api/v1/operations"): (),
}

RETRY_AFTER = OpenAPIHeader(
    schema=Schema(type=OpenAPIType.INTEGER), description="seconds to wait before trying again"
)
BINARY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
REDIRECT = OpenAPIResponse(
    description="Redirect to a presigned URL of the object store (S3 mode)",
    headers={"Location": OpenAPIHeader(schema=Schema(type=OpenAPIType.STRING))},
)


def _error_response(status: int) -> OpenAPIResponse:
    headers: dict[str, OpenAPIHeader | Reference] | None = (
        {"Retry-After": RETRY_AFTER} if status in (429, 503) else None
    )
    return OpenAPIResponse(
        description=REASONS[status],
        headers=headers,
        content={
            "application/json": OpenAPIMediaType(schema=Reference(ref="#/components/schemas/Error"))
        },
    )


def _binary(description: str, media_types: list[str]) -> OpenAPIResponse:
    return OpenAPIResponse(
        description=description,
        content={media: OpenAPIMediaType(schema=BINARY) for media in media_types},
    )


def _operation(item: PathItem, method: str) -> Operation | None:
    op = getattr(item, method, None)
    return op if isinstance(op, Operation) else None


def _default_errors(method: str, path: str) -> tuple[int, ...]:
    """A route the table does not list yet: what any authenticated route can answer."""
    statuses = [400, 401]
    if "{" in path:
        statuses.append(404)
    if method != "get":
        statuses.append(409)
    return tuple(statuses)


def _add_errors(op: Operation, statuses: tuple[int, ...]) -> None:
    responses = dict(op.responses or {})
    responses.pop("400", None)  # Litestar's generic one; ours below says what it means
    for status in (*statuses, 429):  # every /api/ route is rate limited
        responses[str(status)] = _error_response(status)
    op.responses = responses


def document_errors(schema: OpenAPI) -> OpenAPI:
    """Add every route's error answers, the error body and the binary downloads, in place."""
    components = schema.components if isinstance(schema.components, Components) else Components()
    schema.components = components
    components.schemas = {**(components.schemas or {}), "Error": ERROR_SCHEMA}
    paths = schema.paths or {}
    for method, path in ERRORS:
        item = paths.get(path)
        if not isinstance(item, PathItem) or _operation(item, method) is None:
            raise RuntimeError(f"the OpenAPI table names {method.upper()} {path}, not a route")
    for path, item in paths.items():
        if not path.startswith("/api/") or not isinstance(item, PathItem):
            continue
        for method in ("get", "post", "put", "patch", "delete"):
            op = _operation(item, method)
            if op is not None:
                statuses = ERRORS.get((method, path)) or _default_errors(method, path)
                _add_errors(op, statuses)
    image_types = sorted({FORMATS[name].content_type for name in get_args(OutputFormat)})

    outputs = _operation(paths[JOB + "/outputs/{name}"], "get")
    archive = _operation(paths[JOB + "/archive"], "get")
    assert outputs is not None and archive is not None and outputs.responses and archive.responses
    outputs.responses["200"] = _binary("The output image, in its format", image_types)
    outputs.responses["307"] = REDIRECT
    archive.responses["200"] = _binary("A ZIP of the succeeded outputs", ["application/zip"])
    archive.responses["307"] = REDIRECT
    for path in (JOB + "/outputs/{name}/preview", JOB + "/source/preview"):
        preview = _operation(paths[path], "get")
        assert preview is not None and preview.responses
        preview.responses["200"] = _binary("A WebP preview, at most 320 px", ["image/webp"])
    submit = _operation(paths["/api/v1/jobs"], "post")
    assert submit is not None and submit.responses and "202" in submit.responses
    submit.responses["200"] = OpenAPIResponse(
        description="The job: finished (with `wait`), or the same request again "
        "(`Idempotency-Key`)",
        content=submit.responses["202"].content,  # type: ignore[union-attr]
    )
    for path in ("/readyz", "/health"):
        op = _operation(paths[path], "get")
        assert op is not None and op.responses
        ok = op.responses["200"]
        assert isinstance(ok, OpenAPIResponse)
        op.responses["503"] = OpenAPIResponse(
            description="A dependency is down: the same report, listing it under `down`",
            content=ok.content,
        )
    return schema
