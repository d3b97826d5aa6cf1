"""Job routes: submit, read, list, download outputs and archives, retry, cancel, delete.

The handlers parse the request and shape the answer; the use cases are ``pixtools.jobs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib.util
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.datastructures import ResponseHeader
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import HTTP_200_OK, HTTP_202_ACCEPTED, HTTP_204_NO_CONTENT

from pixtools.api.auth import PrincipalDep, ServicesDep, authenticated
from pixtools.api.errors import field_error, single_valued_query
from pixtools.api.middleware import release_upload_slot
from pixtools.api.sources import is_json, reference_submission
from pixtools.api.upload import SubmitOperation, file_submission
from pixtools.api.waiters import JobWaiters
from pixtools.jobs import manage
from pixtools.jobs.errors import not_found
from pixtools.jobs.submit import Source, Submitted, submit
from pixtools.jobspec.status import TERMINAL_JOB
from pixtools.store.jobs import JobRecord
from pixtools.store.webhooks import Attempt
from pixtools.views import JobOut, JobPage, decode_cursor, encode_cursor, job_out

STATE_HEADER = "Pixtools-Job-State"
PROXY_DOC = (
    "true: the bytes come from this API instead of a redirect to a presigned storage URL "
    "(for a browser page whose CSP allows this origin only)"
)


@functools.cache
def ml_available() -> bool:
    """Whether this process can run ML ops. In embedded mode the workers are this process:
    ML ops need the ml extra here. (In services mode the ML worker is another process; the
    API never imports onnxruntime.)"""
    return importlib.util.find_spec("onnxruntime") is not None


class JobController(Controller):
    """The job routes under ``/api/v1/jobs``, for an authenticated caller (or anyone, auth off)."""

    path = "/api/v1/jobs"
    tags = ["jobs"]
    guards = [authenticated, single_valued_query]  # 401 before any 400 about parameters

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        operation_class=SubmitOperation,
        summary="Submit a job",
        description="Upload one image (`file`) and a job spec (`spec`, JSON text), or send "
        "JSON naming the source by reference (see docs: Sources by reference). "
        "Optional header `Idempotency-Key`: the same key and request again returns 200 "
        "with the same job; the same key with a different request is 409. With `wait=N` "
        "(seconds, up to 60) the answer comes when the job is finished (200) or after N "
        "seconds (202).",
    )
    async def submit(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        principal: PrincipalDep,
        idempotency_key: Annotated[
            str | None, HeaderParameter(name="Idempotency-Key", max_length=255, required=False)
        ] = None,
        wait: Annotated[float, QueryParameter(name="wait", ge=0, le=60)] = 0,
    ) -> Response[JobOut]:
        """Accept a job on an uploaded or referenced source (200: a replay, or done in ``wait``)."""
        source: Source
        if is_json(request):
            raw_spec, source = await reference_submission(request)
        else:
            raw_spec, source = await file_submission(request, services.settings.max_upload_bytes)
        submitted = await submit(
            services,
            principal.owner,
            raw_spec,
            source,
            idempotency_key=idempotency_key,
            ml_steps=request.app.state.ml_steps,
        )
        release_upload_slot(request.scope)  # read and stored: waiting (?wait=N) needs no slot
        return await _submitted(request, services, submitted, wait)

    @get("/", summary="List your jobs, newest first")
    async def list_jobs(  # noqa: PLR0913  Litestar fills each query parameter by name
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        *,
        status: Annotated[
            str | None,
            QueryParameter(
                name="status",
                required=False,
                pattern=r"^(queued|running|succeeded|partial|failed|canceled)$(?!\n)",
            ),
        ] = None,
        limit: Annotated[int, QueryParameter(name="limit", ge=1, le=100)] = 20,
        cursor: Annotated[
            str | None, QueryParameter(name="cursor", required=False, max_length=200)
        ] = None,
        q: Annotated[
            str | None,
            QueryParameter(
                name="q",
                required=False,
                max_length=255,
                description="only jobs whose source filename contains this (case-insensitive)",
            ),
        ] = None,
    ) -> JobPage:
        """A page of the caller's jobs, filtered by status or source filename."""
        before = None
        if cursor:
            try:
                before = decode_cursor(cursor)
            except (ValueError, UnicodeDecodeError):
                raise field_error("cursor", "not a cursor returned by this API") from None
        records = await services.jobs.page(
            principal.owner, status=status, limit=limit + 1, before=before, name=q
        )
        page, more = records[:limit], len(records) > limit
        next_cursor = encode_cursor(page[-1].job.created_at, page[-1].job.id) if more else None
        return JobPage(items=[job_out(r) for r in page], next_cursor=next_cursor)

    @get(
        "/{job_id:uuid}",
        summary="Get a job",
        description="With `wait=N` (seconds, up to 60) the answer comes as soon as the job "
        "finishes, or after N seconds with the job as it is then (long polling). With "
        "`since` (the `Pixtools-Job-State` header of an earlier answer) it also comes as "
        "soon as the job's state differs from that one: an output started, ended or was "
        "taken over.",
        response_headers=[
            ResponseHeader(
                name=STATE_HEADER,
                description="An opaque token of the job's status and its outputs' statuses "
                "and attempts: pass it back as `since` to wait for the next change.",
                documentation_only=True,
            )
        ],
    )
    async def get_job(  # noqa: PLR0913  Litestar fills each query parameter by name
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        principal: PrincipalDep,
        job_id: FromPath[uuid.UUID],
        *,
        wait: Annotated[float, QueryParameter(name="wait", ge=0, le=60)] = 0,
        since: Annotated[
            str | None,
            QueryParameter(
                name="since",
                max_length=64,
                description="with `wait`: answer as soon as the job's state token differs "
                "from this one (the `Pixtools-Job-State` header of an earlier answer)",
            ),
        ] = None,
    ) -> Response[JobOut]:
        """The caller's job, now, once it finishes, or (``since``) once it moves (``wait``)."""
        record = await wait_for_job(request, services, job_id, principal.owner, wait, since=since)
        if record is None:
            raise not_found(manage.JOB_NOT_FOUND)
        return Response(job_out(record), headers={STATE_HEADER: job_state(record)})

    @get("/{job_id:uuid}/outputs/{name:str}", summary="Download an output")
    async def download_output(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        job_id: FromPath[uuid.UUID],
        name: FromPath[str],
        proxy: Annotated[bool, QueryParameter(name="proxy", description=PROXY_DOC)] = False,
    ) -> Response[bytes] | Redirect:
        """A succeeded output: a redirect to storage, or its bytes with ``proxy``."""
        out, key = await manage.output_object(services, job_id, principal.owner, name)
        return await _object_response(
            services,
            key,
            f"{name}.{key.rsplit('.', 1)[-1]}",
            out.content_type or "application/octet-stream",
            proxy=proxy,
        )

    @get("/{job_id:uuid}/archive", summary="Download the ZIP of all succeeded outputs")
    async def download_archive(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        job_id: FromPath[uuid.UUID],
        proxy: Annotated[bool, QueryParameter(name="proxy", description=PROXY_DOC)] = False,
    ) -> Response[bytes] | Redirect:
        """The job's ZIP: a redirect to storage, or its bytes with ``proxy``."""
        key = await manage.archive_key(services, job_id, principal.owner)
        return await _object_response(
            services, key, f"{job_id}.zip", "application/zip", proxy=proxy
        )

    @post(
        "/{job_id:uuid}/retry", status_code=HTTP_202_ACCEPTED, summary="Re-run the failed outputs"
    )
    async def retry(
        self, services: ServicesDep, principal: PrincipalDep, job_id: FromPath[uuid.UUID]
    ) -> JobOut:
        """Queue the failed outputs of a finished job again."""
        return job_out(await manage.retry(services, job_id, principal.owner))

    @post(
        "/{job_id:uuid}/cancel",
        status_code=HTTP_200_OK,
        summary="Cancel an unfinished job",
        description="Outputs not yet finished are not processed (one being rendered now is "
        "dropped when it ends); the job ends `canceled` and its webhook, if any, is sent with "
        "the event `job.canceled`. 409 when the job has already finished.",
    )
    async def cancel(
        self, services: ServicesDep, principal: PrincipalDep, job_id: FromPath[uuid.UUID]
    ) -> JobOut:
        """Cancel a queued or running job."""
        return job_out(await manage.cancel(services, job_id, principal.owner))

    @get(
        "/{job_id:uuid}/outputs/{name:str}/preview",
        summary="A small WebP preview of an image output",
        description="At most 320 px on its longest side, made by the worker beside the "
        "output. 404 when the output has no preview (an analysis, or made before previews "
        "existed); 409 while the output is not succeeded.",
    )
    async def output_preview(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        job_id: FromPath[uuid.UUID],
        name: FromPath[str],
    ) -> Response[bytes]:
        """An image output's WebP preview."""
        return _preview_response(
            await manage.output_preview_of(services, job_id, principal.owner, name)
        )

    @get(
        "/{job_id:uuid}/source/preview",
        summary="A small WebP preview of the job's source",
        description="Made by the worker with the job's first finished output; 404 before.",
    )
    async def source_preview(
        self, services: ServicesDep, principal: PrincipalDep, job_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        """The job source's WebP preview."""
        return _preview_response(await manage.source_preview_of(services, job_id, principal.owner))

    @delete(
        "/{job_id:uuid}",
        status_code=HTTP_204_NO_CONTENT,
        summary="Delete a finished job and its stored objects",
        description="The job, its outputs and every stored object (source, outputs, "
        "previews, archive) are removed. 409 while the job is queued or running: cancel it "
        "first.",
    )
    async def delete_job(
        self, services: ServicesDep, principal: PrincipalDep, job_id: FromPath[uuid.UUID]
    ) -> None:
        """Delete a finished job and everything it stored."""
        await manage.delete(services, job_id, principal.owner)


def _preview_response(data: bytes) -> Response[bytes]:
    # Served by the API itself (never a redirect): a few KB, and the page's CSP allows
    # images from this origin only.
    return Response(
        data,
        media_type="image/webp",
        headers={"Cache-Control": "private, max-age=86400"},
    )


@get("/api/v1/config", tags=["operations"], summary="Server settings a client needs")
async def client_config(services: ServicesDep) -> dict[str, Any]:
    """What a client needs to know to behave: limits, and when a running output is stale."""
    s = services.settings
    return {
        "stale_after_seconds": s.stale_after_seconds,
        "heartbeat_seconds": s.heartbeat_seconds,
        "max_upload_bytes": s.max_upload_bytes,
        "max_pixels": s.max_pixels,
        "output_max_attempts": s.output_max_attempts,
        "webhooks_enabled": bool(s.webhook_secret),
        "auth": s.auth,
    }


def job_state(record: JobRecord) -> str:
    """A short token of what a progress display shows: the job's status and archive, each
    output's status and attempt. Equal tokens: nothing moved."""
    parts = [record.job.status, str(record.job.archive_status)]
    parts += [f"{o.name}:{o.status}:{o.attempts}" for o in record.outputs]
    return hashlib.blake2s("|".join(parts).encode(), digest_size=8).hexdigest()


async def wait_for_job(  # noqa: PLR0913  the request's parts, then the two waits
    request: Request[Any, Any, Any],
    services: ServicesDep,
    job_id: uuid.UUID,
    owner: str | None,
    wait: float,
    *,
    since: str | None = None,
) -> JobRecord | None:
    """The job now, or (``wait`` > 0) as soon as it is finished, or (``since``) as soon as
    its state token differs from ``since``, or after ``wait`` seconds."""
    if wait <= 0:
        return await services.jobs.get(job_id, owner)
    waiters: JobWaiters = request.app.state.waiters
    # Subscribe before reading, so a job that ends (or moves) in between still wakes us.
    with waiters.subscribe(str(job_id), progress=since is not None) as woken:
        record = await services.jobs.get(job_id, owner)
        if (
            record is not None
            and record.job.status not in TERMINAL_JOB
            and (since is None or job_state(record) == since)
        ):
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(woken, timeout=wait)
            record = await services.jobs.get(job_id, owner) or record
    return record


async def _object_response(
    services: ServicesDep, key: str, filename: str, content_type: str, *, proxy: bool = False
) -> Response[bytes] | Redirect:
    url = None if proxy else await services.objects.presigned_url(key, filename, content_type)
    if url is not None:
        return Redirect(url, status_code=307)
    data = await manage.stored_object(services, key, missing="the stored object has expired")
    return Response(
        data,
        media_type=content_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@get(
    "/api/v1/jobs/{job_id:uuid}/webhook-attempts",
    tags=["jobs"],
    summary="Webhook delivery attempts",
    guards=[authenticated],
)
async def webhook_attempts(
    services: ServicesDep, principal: PrincipalDep, job_id: FromPath[uuid.UUID]
) -> list[Attempt]:
    """The job's webhook delivery attempts, in order."""
    return await manage.webhook_attempts(services, job_id, principal.owner)


async def _submitted(
    request: Request[Any, Any, Any], services: ServicesDep, submitted: Submitted, wait: float
) -> Response[JobOut]:
    """A replay is 200 and the earlier job; a new job is counted and ``accepted``."""
    record = submitted.record
    if submitted.replayed:
        return Response(
            job_out(record), status_code=200, headers={"Location": f"/api/v1/jobs/{record.job.id}"}
        )
    request.app.state.metrics.jobs_submitted.inc()
    return await accepted(request, services, record, wait)


async def accepted(
    request: Request[Any, Any, Any], services: ServicesDep, record: JobRecord, wait: float
) -> Response[JobOut]:
    """The answer to a submission: 202 and the job as accepted; with ``wait`` > 0, 200 and
    the finished job as soon as it is finished, or 202 and the job after ``wait`` seconds."""
    if wait > 0:
        record = await wait_for_job(request, services, record.job.id, None, wait) or record
    finished = record.job.status in TERMINAL_JOB
    return Response(
        job_out(record),
        status_code=200 if finished else HTTP_202_ACCEPTED,
        headers={"Location": f"/api/v1/jobs/{record.job.id}"},
    )
