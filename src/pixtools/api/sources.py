"""Sources by reference: a job on an earlier job's source, on a presigned upload, or on a URL.

``POST /api/v1/jobs`` with a JSON body (``{"source": {...}, "outputs": [...], ...}``) names
the source instead of carrying it:

- ``{"job": "<id>"}``: the source object of one of the caller's jobs, shared (no copy);
- ``{"upload": "<id>"}``: an object stored through ``POST /api/v1/uploads`` (S3 only), checked
  on its first bytes (a ranged read) with the same 413/415/422 rules as a multipart upload;
- ``{"url": "https://..."}``: fetched by the worker through the SSRF guard (off unless
  configured, hosts on an allowlist).

Here the JSON body is read and the reference picked out; ``pixtools.jobs.sources.Reference``
resolves it.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from litestar import Request, post
from litestar.status_codes import HTTP_201_CREATED

from pixtools.api.auth import PrincipalDep, ServicesDep, authenticated
from pixtools.api.errors import field_error, refuse_duplicate_keys
from pixtools.jobs.errors import conflict
from pixtools.jobs.sources import Reference

#: The largest JSON submission (the spec and the source reference).
MAX_JSON_BYTES = 256 * 1024
SOURCE_KINDS = ("job", "upload", "url")


def is_json(request: Request[Any, Any, Any]) -> bool:
    """A JSON submission (by reference), not a multipart upload."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return ctype == "application/json"


async def _read_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise field_error("body", f"larger than {MAX_JSON_BYTES} bytes", 413)
    try:
        data = json.loads(body, object_pairs_hook=refuse_duplicate_keys)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError
        raise field_error("body", f"malformed JSON ({exc})") from None
    if not isinstance(data, dict):
        raise field_error("body", "must be a JSON object with source and outputs")
    return data


def _source_ref(value: Any) -> tuple[str, str]:
    if not isinstance(value, dict) or len(value) != 1:
        raise field_error(
            "source",
            'must be an object with one of "job", "upload" or "url" '
            '(e.g. {"job": "<id of an earlier job>"}); or send the file itself as '
            "multipart/form-data with a file part and a spec part",
        )
    ((kind, ref),) = value.items()
    if kind not in SOURCE_KINDS:
        raise field_error("source", f'unknown source {kind!r}: use "job", "upload" or "url"')
    if not isinstance(ref, str) or not ref or len(ref) > 2048:
        raise field_error(f"source.{kind}", "must be a non-empty string (at most 2048 chars)")
    return kind, ref


async def reference_submission(request: Request[Any, Any, Any]) -> tuple[str, Reference]:
    """The spec (as JSON text) and the source reference of a JSON submission."""
    body = await _read_json(request)
    kind, ref = _source_ref(body.pop("source", None))
    return json.dumps(body), Reference(kind, ref)


@post(
    "/api/v1/uploads",
    tags=["jobs"],
    guards=[authenticated],
    status_code=HTTP_201_CREATED,
    summary="Get a presigned upload for a large source (S3 store)",
    description="Returns `id`, `url`, `fields` and `max_bytes`: POST the file to `url` as "
    "multipart/form-data with `fields` and then the `file` part (S3 refuses more than "
    '`max_bytes`), then submit a job with `{"source": {"upload": id}, ...}`. The job takes '
    "the upload's id. 409 on a server storing objects in a local folder: send the file with "
    "the job there.",
)
async def create_upload(services: ServicesDep, principal: PrincipalDep) -> dict[str, Any]:
    """A presigned POST for ``raw/{id}/source``, recorded as the caller's."""
    upload_id = uuid.uuid4()
    key = f"raw/{upload_id}/source"
    max_bytes = services.settings.max_upload_bytes
    post_form = await services.objects.presigned_upload(key, max_bytes)
    if post_form is None:
        raise conflict(
            "this server stores objects in a local folder: presigned uploads need the "
            "S3 store; send the file with the job (multipart POST /api/v1/jobs)"
        )
    await services.uploads.create(upload_id, principal.owner, key, max_bytes)
    return {
        "id": str(upload_id),
        "method": "POST",
        "url": post_form["url"],
        "fields": post_form["fields"],
        "max_bytes": max_bytes,
        "expires_in": services.settings.presign_seconds,
    }
