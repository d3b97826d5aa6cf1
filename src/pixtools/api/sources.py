"""Sources by reference: a job on an earlier job's source, on a presigned upload, or on a URL.

``POST /api/v1/jobs`` with a JSON body (``{"source": {...}, "outputs": [...], ...}``) names
the source instead of carrying it:

- ``{"job": "<id>"}``: the source object of one of the caller's jobs, shared (no copy);
- ``{"upload": "<id>"}``: an object stored through ``POST /api/v1/uploads`` (S3 only), checked
  on its first bytes (a ranged read) with the same 413/415/422 rules as a multipart upload;
- ``{"url": "https://..."}``: fetched by the worker through the SSRF guard (off unless
  configured, hosts on an allowlist).

The spec is checked against the source's header facts kept in the database (or read from the
stored object's head), so the API never holds the image itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import uuid
from io import BytesIO
from typing import Any
from urllib.parse import unquote, urlsplit

from litestar import Request, Response, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.status_codes import HTTP_201_CREATED, HTTP_202_ACCEPTED, HTTP_409_CONFLICT
from PIL import Image
from sqlalchemy.exc import IntegrityError

from pixtools.api.auth import PrincipalDep, ServicesDep, authenticated
from pixtools.api.jobs import (
    SNIFF_BYTES,
    Conflict,
    JobController,
    checked_spec,
    field_error,
    job_of,
    wait_for_job,
)
from pixtools.api.waiters import JobWaiters
from pixtools.imaging import FORMATS, ImageError, extract_metadata, probe, sniff_format
from pixtools.imaging.decode import SourceInfo, pending_orientation
from pixtools.imaging.errors import CorruptImage, UnsupportedFormat
from pixtools.imaging.limits import apply_decoder_limits, check_pixels
from pixtools.jobspec.job import JobSpec, SpecError, check_against_source, spec_to_builtins
from pixtools.jobspec.status import TERMINAL_JOB
from pixtools.settings import Settings
from pixtools.store.jobs import IdempotencyClaim, IdempotencyConflict, JobRecord, SourceGone
from pixtools.store.objects import ObjectNotFound
from pixtools.store.sources import UploadRepository, source_of_job
from pixtools.views import JobOut, job_out

#: The largest JSON submission (the spec and the source reference).
MAX_JSON_BYTES = 256 * 1024
#: How much of a presigned upload the API reads to probe it: the header of any supported
#: format (JPEG's EXIF segment is at most 64 KiB) with room to spare.
HEAD_BYTES = 256 * 1024
SOURCE_KINDS = ("job", "upload", "url")


def is_json(request: Request[Any, Any, Any]) -> bool:
    """A JSON submission (by reference), not a multipart upload."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return ctype == "application/json"


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise field_error("body", f"duplicate key {key!r} in a JSON object")
        seen[key] = value
    return seen


async def _read_json(request: Request[Any, Any, Any]) -> dict[str, Any]:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_JSON_BYTES:
            raise field_error("body", f"larger than {MAX_JSON_BYTES} bytes", 413)
    try:
        data = json.loads(body, object_pairs_hook=_refuse_duplicates)
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


def _uuid(field: str, ref: str) -> uuid.UUID:
    try:
        return uuid.UUID(ref)
    except ValueError:
        raise field_error(field, "not an id returned by this API") from None


def _check_spec(spec: JobSpec, facts: dict[str, Any], settings: Settings) -> None:
    try:
        check_against_source(
            spec,
            facts["width"],
            facts["height"],
            source_format=facts["format"],
            max_pixels=settings.max_pixels,
        )
    except SpecError as exc:  # 400, or 422 for a result over the pixel or format limits
        raise field_error(exc.field, exc.message, exc.status) from None


def _image_error(field: str, exc: ImageError) -> HTTPException:
    return field_error(field, str(exc), exc.http_status)


def probe_head(head: bytes, *, max_pixels: int) -> SourceInfo:
    """Format and upright size from a file's first bytes (no structure walk: the rest of the
    file is not here; the worker's decode checks it whole). Frames are not counted (the
    worker's decode bounds them by the pixel limit)."""
    apply_decoder_limits(max_pixels)
    fmt = sniff_format(head[:SNIFF_BYTES])
    if fmt is None:
        raise UnsupportedFormat("not a supported image (JPEG, PNG, WebP, AVIF, GIF, TIFF, BMP)")
    try:
        with Image.open(BytesIO(head), formats=[FORMATS[fmt].pil_name]) as im:
            width, height = im.size
            turned = pending_orientation(im, fmt) in (5, 6, 7, 8)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise CorruptImage(f"image header declares too many pixels ({exc})") from None
    except Exception as exc:
        raise CorruptImage(f"corrupt {fmt.upper()} header: {exc}") from None
    if width < 1 or height < 1:
        raise CorruptImage(f"{fmt.upper()} header declares an empty image")
    check_pixels(width, height, 1, max_pixels)
    if turned:
        width, height = height, width
    return SourceInfo(fmt, FORMATS[fmt].content_type, width, height, 1)


async def _upload_source(
    services: ServicesDep, owner: str, upload_id: uuid.UUID
) -> tuple[dict[str, Any], bytes | None]:
    """The facts of a presigned upload once it is stored (and the whole file when it is
    small enough to have been read whole)."""
    settings = services.settings
    upload = await UploadRepository(services.db).get(upload_id, owner)
    if upload is None:
        raise NotFoundException(
            detail="source.upload: no such upload", extra={"field": "source.upload"}
        )
    try:
        size, head = await services.objects.read_head(upload.key, HEAD_BYTES)
    except ObjectNotFound:
        raise HTTPException(
            status_code=HTTP_409_CONFLICT,
            detail="source.upload: nothing has been uploaded yet (POST the file to the URL "
            "returned by POST /api/v1/uploads first)",
            extra={"field": "source.upload"},
        ) from None
    limit = min(upload.max_bytes, settings.max_upload_bytes)
    if size > limit:
        raise field_error("source.upload", f"larger than {limit} bytes", 413)
    whole = head if size <= len(head) else None
    try:
        if whole is not None:  # all of it is here: the full check, as for a multipart upload
            info = await asyncio.to_thread(probe, whole, max_pixels=settings.max_pixels)
        else:
            info = await asyncio.to_thread(probe_head, head, max_pixels=settings.max_pixels)
    except ImageError as exc:
        raise _image_error("source.upload", exc) from None
    facts = {
        "filename": "upload",
        "format": info.format,
        "content_type": info.content_type,
        "bytes": size,
        "width": info.width,
        "height": info.height,
        "key": upload.key,
    }
    return facts, whole


def _url_source(settings: Settings, url: str, job_id: uuid.UUID) -> dict[str, Any]:
    if not settings.url_sources:
        raise field_error(
            "source.url", "URL sources are off on this server (PIXTOOLS_URL_SOURCES=true)"
        )
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        parts.port  # noqa: B018 - parsing is the check
    except ValueError as exc:
        raise field_error("source.url", f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https") or not host:
        raise field_error("source.url", "must be an absolute http(s) URL")
    if not settings.url_host_allowed(host):
        raise field_error(
            "source.url", f"host {host!r} is not on this server's PIXTOOLS_URL_SOURCE_HOSTS"
        )
    name = unquote(parts.path.rsplit("/", 1)[-1]) or host
    # Facts unknown until the worker fetches it (then it fills them in).
    return {
        "filename": name[-255:],
        "format": None,
        "content_type": None,
        "bytes": None,
        "width": None,
        "height": None,
        "url": url,
        "key": f"raw/{job_id}/source",
    }


async def submit_by_reference(
    request: Request[Any, Any, Any],
    services: ServicesDep,
    principal: PrincipalDep,
    idempotency_key: str | None,
    wait: float,
) -> Response[JobOut]:
    """``POST /api/v1/jobs`` with a JSON body: a job on a source named by reference."""
    settings = services.settings
    body = await _read_json(request)
    kind, ref = _source_ref(body.pop("source", None))
    spec = await checked_spec(json.dumps(body), settings)
    spec_data = spec_to_builtins(spec)
    claim = None
    if idempotency_key is not None:
        digest = hashlib.sha256(json.dumps([spec_data, kind, ref], sort_keys=True).encode())
        claim = IdempotencyClaim(principal.owner, idempotency_key, digest.hexdigest())
        found = await services.jobs.find_idempotent(principal.owner, idempotency_key)
        if found is not None:
            return await JobController._replay(
                services, principal, found[1], found[0] == claim.request_hash
            )

    job_id = uuid.uuid4()
    source_of = None
    whole: bytes | None = None
    metadata = None
    if kind == "job":
        ref_id = _uuid("source.job", ref)
        earlier = await source_of_job(services.db, ref_id, principal.owner)
        if earlier is None:
            raise NotFoundException(
                detail="source.job: job not found", extra={"field": "source.job"}
            )
        facts = dict(earlier[0])
        if facts.get("width") is None:  # a URL source the worker has not fetched yet
            raise Conflict(
                detail="source.job: that job's source has not been fetched yet",
                extra={"field": "source.job"},
            )
        source_of = (ref_id, principal.owner)
        metadata = earlier[1] if spec.metadata else None
    elif kind == "upload":
        job_id = _uuid("source.upload", ref)  # the upload's one job takes its id
        facts, whole = await _upload_source(services, principal.owner, job_id)
    else:
        facts = _url_source(settings, ref, job_id)
    if facts["width"] is not None:
        _check_spec(spec, facts, settings)
    if spec.metadata and metadata is None and kind != "url":
        data = whole if whole is not None else await services.objects.get(facts["key"])
        metadata = await asyncio.to_thread(extract_metadata, data)

    new_job = job_of(job_id, principal.owner, spec, spec_data, facts)
    waiters: JobWaiters = request.app.state.waiters
    # Subscribed before the job exists: its end cannot slip by, and no read is needed first.
    with waiters.subscribe(str(job_id)) if wait > 0 else contextlib.nullcontext() as finished:
        try:
            record = await services.jobs.create(
                new_job, claim, metadata=metadata, source_of=source_of
            )
        except IdempotencyConflict as exc:
            return await JobController._replay(services, principal, exc.job_id, exc.same_request)
        except SourceGone:
            raise NotFoundException(
                detail="source.job: job not found", extra={"field": "source.job"}
            ) from None
        except IntegrityError:
            if kind != "upload":
                raise
            raise Conflict(
                detail=f'source.upload: already made into job {job_id}; name it as {{"job": '
                f'"{job_id}"}} for another job on the same source',
                extra={"field": "source.upload", "job_id": str(job_id)},
            ) from None
        request.app.state.metrics.jobs_submitted.inc()
        if finished is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished, timeout=wait)
            record = await services.jobs.get(job_id) or record
    return _answer(record)


def _answer(record: JobRecord) -> Response[JobOut]:
    finished = record.job.status in TERMINAL_JOB
    return Response(
        job_out(record),
        status_code=200 if finished else HTTP_202_ACCEPTED,
        headers={"Location": f"/api/v1/jobs/{record.job.id}"},
    )


async def accepted(
    request: Request[Any, Any, Any], services: ServicesDep, record: JobRecord, wait: float
) -> Response[JobOut]:
    """The answer to a submission: 202 and the job as accepted; with ``wait`` > 0, 200 and
    the finished job as soon as it is finished, or 202 and the job after ``wait`` seconds."""
    if wait > 0:
        record = await wait_for_job(request, services, record.job.id, None, wait) or record
    return _answer(record)


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
        raise Conflict(
            detail="this server stores objects in a local folder: presigned uploads need the "
            "S3 store; send the file with the job (multipart POST /api/v1/jobs)"
        )
    await UploadRepository(services.db).create(upload_id, principal.owner, key, max_bytes)
    return {
        "id": str(upload_id),
        "method": "POST",
        "url": post_form["url"],
        "fields": post_form["fields"],
        "max_bytes": max_bytes,
        "expires_in": services.settings.presign_seconds,
    }
