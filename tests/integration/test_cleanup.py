"""`pixtools cleanup`: jobs past retention go, with their stored objects; newer ones stay."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from pixtools.maintenance.cleanup import cleanup_once
from pixtools.services import Services, build_services
from pixtools.settings import Settings
from pixtools.store.jobs import OutputDone
from pixtools.store.migrate import upgrade
from pixtools.store.models import JobRow
from pixtools.store.types import utcnow
from tests.support.jobs import new_job


async def finished_job_with_files(svc: Services) -> uuid.UUID:
    job = new_job("a")
    job = dataclasses.replace(job, source={**job.source, "key": f"raw/{job.id}/source.jpg"})
    await svc.jobs.create(job, None)
    await svc.objects.put(f"raw/{job.id}/source.jpg", b"src", "image/jpeg")
    await svc.jobs.claim_output(job.id, "a", stale_after=60)
    key = f"processed/{job.id}/a.jpg"
    await svc.objects.put(key, b"out", "image/jpeg")
    await svc.objects.put(f"processed/{job.id}/a.preview.webp", b"small", "image/webp")
    await svc.objects.put(f"raw/{job.id}/source.preview.webp", b"small", "image/webp")
    assert await svc.jobs.succeed_output(
        job.id, "a", 1, OutputDone(key, "jpeg", "image/jpeg", 1, 1, 3, None)
    )
    return job.id


async def test_cleanup_removes_expired_jobs_and_their_files(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"PIXTOOLS_DATA_DIR": str(tmp_path), "PIXTOOLS_RETENTION_HOURS": "24"}
    )
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    svc = build_services(settings)
    try:
        old, new = await finished_job_with_files(svc), await finished_job_with_files(svc)
        async with svc.db.transaction() as s:  # the first job is two days old
            await s.execute(
                sa.update(JobRow)
                .where(JobRow.id == old)
                .values(created_at=utcnow() - timedelta(days=2))
            )
    finally:
        await svc.close()

    report = await cleanup_once(settings)
    # source, output, and their previews
    assert report["jobs_removed"] == 1 and report["objects_removed"] == 4

    svc = build_services(settings)
    try:
        assert await svc.jobs.get(old) is None
        assert await svc.jobs.get(new) is not None
        assert not await svc.objects.exists(f"raw/{old}/source.jpg")
        assert not await svc.objects.exists(f"processed/{old}/a.jpg")
        assert not await svc.objects.exists(f"processed/{old}/a.preview.webp")
        assert not await svc.objects.exists(f"raw/{old}/source.preview.webp")
        assert await svc.objects.exists(f"processed/{new}/a.preview.webp")
        assert await svc.objects.exists(f"processed/{new}/a.jpg")
    finally:
        await svc.close()
