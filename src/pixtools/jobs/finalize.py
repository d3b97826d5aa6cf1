"""Closing a job: bundle its succeeded outputs into a ZIP when asked, set the terminal
status, and deliver the terminal-state webhook.

Idempotent: a job already finished is left alone, and the archive's object key is
deterministic, so a repeated run replaces the same object instead of adding one.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
import zipfile

from pixtools.services import Services
from pixtools.store.objects import archive_key

log = logging.getLogger(__name__)

STORED_SUFFIXES = (".jpeg", ".jpg", ".webp", ".avif", ".png", ".gif")


async def finalize_job(svc: Services, job_id: str) -> None:
    """Build the archive (when the job asked for one) and set the job's terminal status."""
    jid = uuid.UUID(job_id)
    record = await svc.jobs.get(jid)
    if record is None or record.job.finished_at is not None:
        return
    archive_status = archive_obj = None
    if record.job.archive_status is not None:
        files = [
            (o.name, o.object_key)
            for o in record.outputs
            if o.status == "succeeded" and o.object_key is not None
        ]
        archive_status, archive_obj = await _archive(svc, job_id, files)
    status = await svc.jobs.complete_job(
        jid, archive_status=archive_status, archive_key=archive_obj
    )
    if status:
        log.info("job %s %s", job_id, status)


async def _archive(
    svc: Services, job_id: str, files: list[tuple[str, str]]
) -> tuple[str, str | None]:
    """(archive status, its object key) for the ZIP of ``files`` (output name, object key)."""
    if not files:
        return "failed", None
    try:
        key = archive_key(job_id)
        blobs = [(f"{n}.{k.rsplit('.', 1)[-1]}", await svc.objects.get(k)) for n, k in files]
        data = await asyncio.to_thread(_zip, blobs)
        await svc.objects.put(key, data, "application/zip")
    except Exception:
        log.exception("archive of %s failed", job_id)
        return "failed", None
    return "succeeded", key


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    buf = io.BytesIO()
    # Images are compressed already: store them; deflate only what shrinks (e.g. TIFF, BMP).
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files:
            method = zipfile.ZIP_STORED if name.endswith(STORED_SUFFIXES) else zipfile.ZIP_DEFLATED
            zf.writestr(
                zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), data, compress_type=method
            )
    return buf.getvalue()


async def deliver_webhook(svc: Services, job_id: str, delivery_id: str) -> None:
    """Deliver the terminal-state webhook (signed, retried, with a circuit breaker)."""
    from pixtools.webhooks.delivery import deliver

    await deliver(svc, uuid.UUID(job_id), uuid.UUID(delivery_id))
