"""A caller's own jobs after submission: look up, retry, cancel, delete, and the objects
they stored."""

from __future__ import annotations

import asyncio
import uuid

from pixtools.jobs.errors import conflict, not_found
from pixtools.jobspec.status import TERMINAL_JOB
from pixtools.services import Services
from pixtools.store.jobs import JobRecord
from pixtools.store.models import OutputRow
from pixtools.store.objects import ObjectNotFound
from pixtools.store.previews import output_preview_key, source_preview_key
from pixtools.store.webhooks import Attempt

JOB_NOT_FOUND = "job not found"
NO_PREVIEW = "no preview stored"


async def owned_job(services: Services, job_id: uuid.UUID, owner: str) -> JobRecord:
    """``owner``'s job (another owner's is as unknown as a missing one)."""
    record = await services.jobs.get(job_id, owner)
    if record is None:
        raise not_found(JOB_NOT_FOUND)
    return record


async def _fresh(services: Services, job_id: uuid.UUID) -> JobRecord:
    record = await services.jobs.get(job_id)
    assert record is not None
    return record


def succeeded_output(record: JobRecord, name: str) -> OutputRow:
    """The output ``name`` of the job, which must have succeeded."""
    out = next((o for o in record.outputs if o.name == name), None)
    if out is None:
        raise not_found(f"no output named {name!r}")
    if out.status != "succeeded":
        raise conflict(f"output {name!r} is {out.status}", {"status": out.status})
    return out


async def output_object(
    services: Services, job_id: uuid.UUID, owner: str, name: str
) -> tuple[OutputRow, str]:
    """A succeeded image output and its object's key (an analysis has none)."""
    out = succeeded_output(await owned_job(services, job_id, owner), name)
    if out.object_key is None:
        raise conflict(f"output {name!r} is an analysis: see its result", {"status": out.status})
    return out, out.object_key


async def archive_key(services: Services, job_id: uuid.UUID, owner: str) -> str:
    """The key of a job's built archive."""
    job = (await owned_job(services, job_id, owner)).job
    if job.archive_status is None:
        raise not_found("this job has no archive (spec.archive is false)")
    if job.archive_status != "succeeded" or job.archive_key is None:
        raise conflict(f"archive is {job.archive_status}", {"status": job.archive_status})
    return job.archive_key


async def output_preview_of(services: Services, job_id: uuid.UUID, owner: str, name: str) -> bytes:
    """The WebP preview of a succeeded image output."""
    out = succeeded_output(await owned_job(services, job_id, owner), name)
    if out.object_key is None:
        raise not_found(f"output {name!r} is an analysis: it has no preview")
    return await stored_object(services, output_preview_key(str(job_id), name), missing=NO_PREVIEW)


async def source_preview_of(services: Services, job_id: uuid.UUID, owner: str) -> bytes:
    """The WebP preview of the job's source."""
    await owned_job(services, job_id, owner)
    return await stored_object(services, source_preview_key(str(job_id)), missing=NO_PREVIEW)


async def stored_object(services: Services, key: str, *, missing: str) -> bytes:
    """A stored object's bytes, or not-found with the text ``missing``."""
    try:
        return await services.objects.get(key)
    except ObjectNotFound:
        raise not_found(missing) from None


async def retry(services: Services, job_id: uuid.UUID, owner: str) -> JobRecord:
    """Re-run the failed outputs of a finished (not canceled) job."""
    status = (await owned_job(services, job_id, owner)).job.status
    if status not in TERMINAL_JOB or status == "canceled":
        raise conflict(f"job is {status}; only a finished job can be retried")
    if not await services.jobs.retry_failed_outputs(job_id, owner):
        raise conflict("job has no failed outputs")
    return await _fresh(services, job_id)


async def cancel(services: Services, job_id: uuid.UUID, owner: str) -> JobRecord:
    """Cancel a queued or running job."""
    before = await services.jobs.cancel(job_id, owner)
    if before is None:
        raise not_found(JOB_NOT_FOUND)
    if before in TERMINAL_JOB:
        raise conflict(
            f"job is {before}; only a queued or running job can be canceled", {"status": before}
        )
    return await _fresh(services, job_id)


async def delete(services: Services, job_id: uuid.UUID, owner: str) -> None:
    """Remove a finished job, its rows, then its objects."""
    removed = await services.jobs.delete_finished(job_id, owner)
    if removed is None:
        raise not_found(JOB_NOT_FOUND)
    if isinstance(removed, str):
        raise conflict(f"job is {removed}; cancel it before deleting it", {"status": removed})
    # The rows went first: a failure here leaves objects that S3 lifecycle rules (or
    # `pixtools cleanup` on the local store) expire, never a job without its objects.
    await asyncio.gather(*(services.objects.delete(k) for k in removed.object_keys()))


async def webhook_attempts(services: Services, job_id: uuid.UUID, owner: str) -> list[Attempt]:
    """The webhook delivery attempts of the owner's job."""
    await owned_job(services, job_id, owner)
    return await services.webhooks.attempts(job_id)
