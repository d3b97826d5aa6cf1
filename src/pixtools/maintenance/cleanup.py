"""One cleanup pass (``pixtools cleanup``): expire jobs, their objects and old outbox rows.

On S3 the bucket's lifecycle rules expire ``raw/``, ``processed/`` and ``archives/`` after a
day; this pass removes the rows (and, on the local store, the files) of jobs older than
``PIXTOOLS_RETENTION_HOURS``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pixtools.services import build_services
from pixtools.settings import Settings
from pixtools.store.outbox import OutboxRepository
from pixtools.store.sources import UploadRepository
from pixtools.store.types import utcnow


async def cleanup_once(settings: Settings) -> dict[str, Any]:
    """One pass: expired jobs and uploads with their objects, and old sent outbox rows, deleted."""
    services = build_services(settings, pool_size=2)
    removed_jobs = removed_objects = 0
    try:
        cutoff = utcnow() - timedelta(hours=settings.retention_hours)
        while True:
            batch = await services.jobs.delete_older_than(cutoff)
            if not batch:
                break
            removed_jobs += len(batch)
            for record in batch:
                for key in record.object_keys():
                    # Counted only when there: previews and archives exist for some jobs only.
                    if await services.objects.exists(key):
                        await services.objects.delete(key)
                        removed_objects += 1
        uploads = UploadRepository(services.db)
        while unused := await uploads.delete_older_than(cutoff):
            for key in unused:  # handed out, never made into a job
                await services.objects.delete(key)
                removed_objects += 1
        sent = await OutboxRepository(services.db).delete_sent_before(settings.retention_hours)
        return {
            "jobs_removed": removed_jobs,
            "objects_removed": removed_objects,
            "outbox_rows_removed": sent,
        }
    finally:
        await services.close()
