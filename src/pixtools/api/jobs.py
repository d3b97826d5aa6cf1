"""Job routes: submit, read, list, download outputs and archives, retry."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import importlib.util
import json
import uuid
from typing import Annotated, Any

from litestar import Controller, Request, Response, delete, get, post
from litestar.exceptions import HTTPException, NotFoundException
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import Redirect
from litestar.status_codes import (
    HTTP_200_OK,
    HTTP_202_ACCEPTED,
    HTTP_204_NO_CONTENT,
    HTTP_409_CONFLICT,
)

from pixtools.api.auth import PrincipalDep, ServicesDep, authenticated
from pixtools.api.upload import SubmitOperation, read_job_form
from pixtools.api.waiters import JobWaiters
from pixtools.imaging import (
    FORMATS,
    ImageError,
    UnsupportedFormat,
    extract_metadata,
    probe,
    sniff_format,
)
from pixtools.settings import Settings
from pixtools.jobspec.job import JobSpec, SpecError, check_against_source, parse_spec, spec_to_builtins
from pixtools.jobspec.ops import op_of
from pixtools.jobspec.status import TERMINAL_JOB
from pixtools.store.jobs import (
    IdempotencyClaim,
    IdempotencyConflict,
    JobRecord,
    NewJob,
    NewOutput,
)
from pixtools.store.objects import ObjectNotFound, source_key
from pixtools.store.previews import output_preview_key, source_preview_key
from pixtools.store.webhooks import Attempt, WebhookRepository
from pixtools.views import JobOut, JobPage, decode_cursor, encode_cursor, job_out
from pixtools.webhooks.guard import UnsafeWebhookUrl, resolve_public

SNIFF_BYTES = 64
PROXY_DOC = (
    "true: the bytes come from this API instead of a redirect to a presigned storage URL "
    "(for a browser page whose CSP allows this origin only)"
)
# In embedded mode the workers are this process: ML ops need the ml extra here. (In services
# mode the ML worker is another process; the API never imports onnxruntime.)
ML_AVAILABLE = importlib.util.find_spec("onnxruntime") is not None


def _refuse_ml_steps(spec: JobSpec) -> None:
    for i, out in enumerate(spec.outputs):
        for j, step in enumerate(out.steps):
            if op_of(step).queue == "ml":
                raise field_error(
                    f"outputs[{i}].steps[{j}].op",
                    "ML ops need the ml extra, which this embedded server lacks "
                    "(pip install -e '.[ml]' && scripts/install-ml.sh .venv)",
                )


async def checked_spec(raw: str | bytes, settings: Settings) -> JobSpec:
    """The spec parsed and allowed on this server (ML available, webhooks configured and
    their destination public), else a 400 naming the field."""
    try:
        spec = parse_spec(raw)
    except SpecError as exc:
        raise field_error(exc.field, exc.message) from None
    if settings.embedded and not ML_AVAILABLE:
        _refuse_ml_steps(spec)
    if spec.webhook_url is not None and not settings.webhook_secret:
        raise field_error(
            "webhook_url", "webhooks are disabled: this server has no PIXTOOLS_WEBHOOK_SECRET"
        )
    if spec.webhook_url is not None and not settings.webhook_allow_private:
        try:
            await resolve_public(spec.webhook_url)
        except UnsafeWebhookUrl as exc:
            raise field_error("webhook_url", str(exc)) from None
    return spec


def job_of(
    job_id: uuid.UUID,
    owner: str,
    spec: JobSpec,
    spec_data: dict[str, Any],
    source: dict[str, Any],
) -> NewJob:
    """The job to insert: ``spec_data`` is ``spec`` as stored (defaults filled in)."""
    return NewJob(
        id=job_id,
        owner=owner,
        spec=spec_data,
        source=source,
        webhook_url=spec.webhook_url,
        archive=bool(spec.archive),
        outputs=[
            NewOutput(o.name, i, o.queue, spec_data["outputs"][i]["steps"])
            for i, o in enumerate(spec.outputs)
        ],
    )


def field_error(field: str, message: str, status: int = 400) -> HTTPException:
    return HTTPException(status_code=status, detail=f"{field}: {message}", extra={"field": field})


class Conflict(HTTPException):
    status_code = HTTP_409_CONFLICT


class JobController(Controller):
    path = "/api/v1/jobs"
    tags = ["jobs"]
    guards = [authenticated]  # 401 before any 400 about parameters

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
        from pixtools.api import sources  # (it builds on this module)

        settings = services.settings
        if sources.is_json(request):
            return await sources.submit_by_reference(
                request, services, principal, idempotency_key, wait
            )
        form = await read_job_form(request, max_file_bytes=settings.max_upload_bytes)
        if form.spec is None:
            raise field_error("spec", "a form field with the job spec as JSON text is required")
        if form.file is None:
            raise field_error("file", "a file field with the image is required")
        spec = await checked_spec(form.spec, settings)

        body = form.file
        if sniff_format(body[:SNIFF_BYTES]) is None:
            raise HTTPException(
                status_code=415,
                detail="file: not a supported image (JPEG, PNG, WebP, AVIF, GIF, TIFF, BMP)",
                extra={"field": "file"},
            )
        try:
            info = await asyncio.to_thread(probe, body, max_pixels=settings.max_pixels)
        except UnsupportedFormat as exc:
            raise HTTPException(
                status_code=415, detail=f"file: {exc}", extra={"field": "file"}
            ) from None
        except ImageError as exc:
            raise HTTPException(
                status_code=exc.http_status, detail=f"file: {exc}", extra={"field": "file"}
            ) from None

        try:
            check_against_source(
                spec,
                info.width,
                info.height,
                source_format=info.format,
                max_pixels=settings.max_pixels,
            )
        except SpecError as exc:  # 400, or 422 for a result over the pixel or format limits
            raise field_error(exc.field, exc.message, exc.status) from None

        spec_data = spec_to_builtins(spec)
        filename = (form.filename or "upload")[-255:]
        claim = None
        if idempotency_key is not None:
            digest = hashlib.sha256(json.dumps(spec_data, sort_keys=True).encode())
            digest.update(hashlib.sha256(body).digest())
            digest.update(filename.encode())
            claim = IdempotencyClaim(principal.owner, idempotency_key, digest.hexdigest())
            found = await services.jobs.find_idempotent(principal.owner, idempotency_key)
            if found is not None:
                return await self._replay(
                    services, principal, found[1], found[0] == claim.request_hash
                )

        metadata = None
        if spec.metadata:
            metadata = await asyncio.to_thread(extract_metadata, body)

        job_id = uuid.uuid4()
        key = source_key(str(job_id), FORMATS[info.format].extension)
        await services.objects.put(key, body, info.content_type)
        new_job = job_of(
            job_id,
            principal.owner,
            spec,
            spec_data,
            {
                "filename": filename,
                "format": info.format,
                "content_type": info.content_type,
                "bytes": len(body),
                "width": info.width,
                "height": info.height,
                "key": key,
            },
        )
        try:
            record = await services.jobs.create(new_job, claim, metadata=metadata)
        except IdempotencyConflict as exc:
            await services.objects.delete(key)
            return await self._replay(services, principal, exc.job_id, exc.same_request)
        except BaseException:
            # Nothing half created: the source goes if the job row did not land.
            await asyncio.shield(services.objects.delete(key))
            raise
        request.app.state.metrics.jobs_submitted.inc()
        return await sources.accepted(request, services, record, wait)

    @staticmethod
    async def _replay(
        services: ServicesDep, principal: PrincipalDep, job_id: FromPath[uuid.UUID], same: bool
    ) -> Response[JobOut]:
        if not same:
            raise Conflict(
                detail="Idempotency-Key: already used for a different request",
                extra={"field": "Idempotency-Key", "job_id": str(job_id)},
            )
        record = await services.jobs.get(job_id, principal.owner)
        if record is None:  # removed by cleanup since
            raise Conflict(detail="Idempotency-Key: the job it named no longer exists")
        return Response(
            job_out(record), status_code=200, headers={"Location": f"/api/v1/jobs/{job_id}"}
        )

    @get("/", summary="List your jobs, newest first")
    async def list_jobs(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
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
        "finishes, or after N seconds with the job as it is then (long polling).",
    )
    async def get_job(
        self,
        request: Request[Any, Any, Any],
        services: ServicesDep,
        principal: PrincipalDep,
        job_id: FromPath[uuid.UUID],
        wait: Annotated[float, QueryParameter(name="wait", ge=0, le=60)] = 0,
    ) -> JobOut:
        record = await wait_for_job(request, services, job_id, principal.owner, wait)
        if record is None:
            raise NotFoundException(detail="job not found")
        return job_out(record)

    @get("/{job_id:uuid}/outputs/{name:str}", summary="Download an output")
    async def download_output(
        self,
        services: ServicesDep,
        principal: PrincipalDep,
        job_id: FromPath[uuid.UUID],
        name: FromPath[str],
        proxy: Annotated[bool, QueryParameter(name="proxy", description=PROXY_DOC)] = False,
    ) -> Response[bytes] | Redirect:
        record = await services.jobs.get(job_id, principal.owner)
        if record is None:
            raise NotFoundException(detail="job not found")
        out = next((o for o in record.outputs if o.name == name), None)
        if out is None:
            raise NotFoundException(detail=f"no output named {name!r}")
        if out.status != "succeeded":
            raise Conflict(detail=f"output {name!r} is {out.status}", extra={"status": out.status})
        if out.object_key is None:
            raise Conflict(
                detail=f"output {name!r} is an analysis: see its result",
                extra={"status": out.status},
            )
        return await _object_response(
            services,
            out.object_key,
            f"{name}.{out.object_key.rsplit('.', 1)[-1]}",
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
        record = await services.jobs.get(job_id, principal.owner)
        if record is None:
            raise NotFoundException(detail="job not found")
        job = record.job
        if job.archive_status is None:
            raise NotFoundException(detail="this job has no archive (spec.archive is false)")
        if job.archive_status != "succeeded" or job.archive_key is None:
            raise Conflict(
                detail=f"archive is {job.archive_status}", extra={"status": job.archive_status}
            )
        return await _object_response(
            services, job.archive_key, f"{job_id}.zip", "application/zip", proxy=proxy
        )

    @post(
        "/{job_id:uuid}/retry", status_code=HTTP_202_ACCEPTED, summary="Re-run the failed outputs"
    )
    async def retry(
        self, services: ServicesDep, principal: PrincipalDep, job_id: FromPath[uuid.UUID]
    ) -> JobOut:
        record = await services.jobs.get(job_id, principal.owner)
        if record is None:
            raise NotFoundException(detail="job not found")
        if record.job.status not in TERMINAL_JOB or record.job.status == "canceled":
            raise Conflict(detail=f"job is {record.job.status}; only a finished job can be retried")
        names = await services.jobs.retry_failed_outputs(job_id, principal.owner)
        if not names:
            raise Conflict(detail="job has no failed outputs")
        fresh = await services.jobs.get(job_id)
        assert fresh is not None
        return job_out(fresh)

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
        before = await services.jobs.cancel(job_id, principal.owner)
        if before is None:
            raise NotFoundException(detail="job not found")
        if before in TERMINAL_JOB:
            raise Conflict(
                detail=f"job is {before}; only a queued or running job can be canceled",
                extra={"status": before},
            )
        record = await services.jobs.get(job_id)
        assert record is not None
        return job_out(record)

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
        record = await services.jobs.get(job_id, principal.owner)
        if record is None:
            raise NotFoundException(detail="job not found")
        out = next((o for o in record.outputs if o.name == name), None)
        if out is None:
            raise NotFoundException(detail=f"no output named {name!r}")
        if out.status != "succeeded":
            raise Conflict(detail=f"output {name!r} is {out.status}", extra={"status": out.status})
        if out.object_key is None:
            raise NotFoundException(detail=f"output {name!r} is an analysis: it has no preview")
        return await _preview_response(services, output_preview_key(str(job_id), name))

    @get(
        "/{job_id:uuid}/source/preview",
        summary="A small WebP preview of the job's source",
        description="Made by the worker with the job's first finished output; 404 before.",
    )
    async def source_preview(
        self, services: ServicesDep, principal: PrincipalDep, job_id: FromPath[uuid.UUID]
    ) -> Response[bytes]:
        if await services.jobs.get(job_id, principal.owner) is None:
            raise NotFoundException(detail="job not found")
        return await _preview_response(services, source_preview_key(str(job_id)))

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
        removed = await services.jobs.delete_finished(job_id, principal.owner)
        if removed is None:
            raise NotFoundException(detail="job not found")
        if isinstance(removed, str):
            raise Conflict(
                detail=f"job is {removed}; cancel it before deleting it",
                extra={"status": removed},
            )
        # The rows went first: a failure here leaves objects that S3 lifecycle rules (or
        # `pixtools cleanup` on the local store) expire, never a job without its objects.
        await asyncio.gather(*(services.objects.delete(k) for k in removed.object_keys()))


async def _preview_response(services: ServicesDep, key: str) -> Response[bytes]:
    # Served by the API itself (never a redirect): a few KB, and the page's CSP allows
    # images from this origin only.
    try:
        data = await services.objects.get(key)
    except ObjectNotFound:
        raise NotFoundException(detail="no preview stored") from None
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


async def wait_for_job(
    request: Request[Any, Any, Any],
    services: ServicesDep,
    job_id: uuid.UUID,
    owner: str | None,
    wait: float,
) -> JobRecord | None:
    """The job now, or (``wait`` > 0) as soon as it is finished, or after ``wait`` seconds."""
    if wait <= 0:
        return await services.jobs.get(job_id, owner)
    waiters: JobWaiters = request.app.state.waiters
    # Subscribe before reading, so a job that ends in between still wakes us.
    with waiters.subscribe(str(job_id)) as finished:
        record = await services.jobs.get(job_id, owner)
        if record is not None and record.job.status not in TERMINAL_JOB:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(finished, timeout=wait)
            record = await services.jobs.get(job_id, owner) or record
    return record


async def _object_response(
    services: ServicesDep, key: str, filename: str, content_type: str, *, proxy: bool = False
) -> Response[bytes] | Redirect:
    url = None if proxy else await services.objects.presigned_url(key, filename, content_type)
    if url is not None:
        return Redirect(url, status_code=307)
    try:
        data = await services.objects.get(key)
    except ObjectNotFound:
        raise NotFoundException(detail="the stored object has expired") from None
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
    record = await services.jobs.get(job_id, principal.owner)
    if record is None:
        raise NotFoundException(detail="job not found")
    return await WebhookRepository(services.db, services.jobs.routes).attempts(job_id)
