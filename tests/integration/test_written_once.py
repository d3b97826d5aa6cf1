"""Every object is written once: a redo after a worker died keeps what the dead attempt
had completed (the key is deterministic and the render the same), on both stores."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest

from pixtools.jobs.process import process_output
from pixtools.services import build_services
from pixtools.settings import Settings
from pixtools.store.jobs import Claim
from pixtools.store.migrate import upgrade
from pixtools.store.objects import output_key
from pixtools.store.previews import output_preview_key
from tests.support.images import jpeg_bytes
from tests.support.jobs import new_job

pytestmark = pytest.mark.services

STALE_AFTER = 0.3


@pytest.fixture(params=["local", "s3"])
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    env = {"PIXTOOLS_DATA_DIR": str(tmp_path), "PIXTOOLS_STALE_AFTER_SECONDS": str(STALE_AFTER)}
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = request.getfixturevalue("s3_bucket")
        env |= {"PIXTOOLS_S3_BUCKET": bucket, "PIXTOOLS_S3_ENDPOINT_URL": endpoint}
    return Settings.from_env(env)


async def test_a_redo_keeps_the_objects_its_dead_attempt_completed(settings: Settings) -> None:
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    svc = build_services(settings)
    job = new_job("a")
    source = f"raw/{job.id}/source.jpg"
    job = dataclasses.replace(job, source={**job.source, "key": source})
    key = output_key(str(job.id), "a", "jpg")
    preview = output_preview_key(str(job.id), "a")
    try:
        await svc.objects.put(source, jpeg_bytes(), "image/jpeg")
        await svc.jobs.create(job, None)
        # Attempt 1 stores the output and its preview, then its worker dies before
        # recording success: the row stays running, its heartbeat goes stale.
        first = await svc.jobs.claim_output(job.id, "a", stale_after=STALE_AFTER)
        assert isinstance(first, Claim) and first.attempts == 1
        await svc.objects.put(key, b"attempt 1's output", "image/jpeg")
        await svc.objects.put(preview, b"attempt 1's preview", "image/webp")
        await asyncio.sleep(STALE_AFTER * 2)

        await process_output(svc, str(job.id), "a")  # attempt 2 takes over

        record = await svc.jobs.get(job.id, job.owner)
        assert record is not None
        out = record.outputs[0]
        assert (out.status, out.attempts, out.object_key) == ("succeeded", 2, key)
        assert await svc.objects.get(key) == b"attempt 1's output"  # not written again
        assert await svc.objects.get(preview) == b"attempt 1's preview"
    finally:
        await svc.close()
