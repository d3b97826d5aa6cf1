"""Jobs sharing a source object: the object lives as long as any job renders from it."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pixtools.maintenance.cleanup import cleanup_once
from pixtools.services import build_services, job_repository
from pixtools.settings import Settings
from pixtools.store.database import Database
from pixtools.store.jobs import JobRepository, NewJob, SourceGone
from pixtools.store.jobs.statements import LOCK_SOURCE_OF
from pixtools.store.migrate import upgrade
from pixtools.store.models import JobRow
from pixtools.store.sources import UploadRepository, source_of_job
from pixtools.store.types import utcnow
from tests.support.jobs import DONE, new_job

pytestmark = pytest.mark.services


def sharing(job: NewJob, key: str, owner: str = "tester") -> NewJob:
    return dataclasses.replace(job, owner=owner, source={**job.source, "key": key})


async def age(db: Database, *job_ids: uuid.UUID, days: int = 2) -> None:
    async with db.transaction() as s:
        await s.execute(
            sa.update(JobRow)
            .where(JobRow.id.in_(job_ids))
            .values(created_at=utcnow() - timedelta(days=days))
        )


async def finished(repo: JobRepository, job: NewJob, source_of: uuid.UUID | None = None) -> None:
    await repo.create(job, None, source_of=(source_of, job.owner) if source_of else None)
    await repo.claim_output(job.id, "a", stale_after=60)
    assert await repo.succeed_output(job.id, "a", 1, DONE)


async def test_cleanup_keeps_a_source_another_job_still_uses(tmp_path: Path) -> None:
    settings = Settings.from_env({"PIXTOOLS_DATA_DIR": str(tmp_path)})
    await asyncio.to_thread(upgrade, settings.effective_database_url)
    svc = build_services(settings)
    first = new_job("a")
    key = f"raw/{first.id}/source.jpg"
    second = sharing(new_job("a"), key)
    try:
        await svc.objects.put(key, b"src", "image/jpeg")
        await finished(svc.jobs, sharing(first, key))
        await finished(svc.jobs, second, source_of=first.id)
        await age(svc.db, first.id)
        assert await svc.jobs.source_in_use(key)
    finally:
        await svc.close()

    # The first job goes, not the source. (objects_removed counts stored objects: these
    # outputs' rows name keys nothing was ever stored under.)
    report = await cleanup_once(settings)
    assert report["jobs_removed"] == 1 and report["objects_removed"] == 0

    svc = build_services(settings)
    try:
        assert await svc.jobs.get(first.id) is None
        assert await svc.objects.exists(key)  # the second job still renders from it
        await age(svc.db, second.id)
    finally:
        await svc.close()

    report = await cleanup_once(settings)  # the second job and, with it, the source
    assert report["jobs_removed"] == 1 and report["objects_removed"] == 1
    svc = build_services(settings)
    try:
        assert not await svc.objects.exists(key)  # the last job using it took it along
    finally:
        await svc.close()


async def test_a_job_on_a_removed_or_foreign_source_is_refused(private_pg_url: str) -> None:
    db = Database(private_pg_url)
    repo = job_repository(db)
    try:
        first = new_job("a")
        await finished(repo, first)
        other = new_job("a", owner="someone-else")
        with pytest.raises(SourceGone):  # not that owner's job
            await repo.create(other, None, source_of=(first.id, other.owner))
        assert await repo.get(other.id) is None  # nothing inserted
        await age(db, first.id)
        removed = await repo.delete_older_than(utcnow() - timedelta(days=1))
        assert first.id in [r.job.id for r in removed]
        late = new_job("a")
        with pytest.raises(SourceGone):  # removed meanwhile: no job on a vanished object
            await repo.create(late, None, source_of=(first.id, late.owner))
    finally:
        await db.dispose()


async def test_removal_marks_a_source_still_shared(private_pg_url: str) -> None:
    db = Database(private_pg_url)
    repo = job_repository(db)
    try:
        first = new_job("a")
        key = f"raw/{first.id}/source.jpg"
        await finished(repo, sharing(first, key))
        await finished(repo, sharing(new_job("a"), key), source_of=first.id)
        lone = new_job("a")
        await finished(repo, sharing(lone, f"raw/{lone.id}/source.jpg"))
        await age(db, first.id, lone.id, days=30)
        removed = {
            r.job.id: r.source_shared
            for r in await repo.delete_older_than(utcnow() - timedelta(days=29))
        }
        assert removed[first.id] is True and removed[lone.id] is False
    finally:
        await db.dispose()


async def test_uploads_never_used_are_forgotten_with_their_objects(private_pg_url: str) -> None:
    db = Database(private_pg_url)
    uploads = UploadRepository(db)
    try:
        unused, used = uuid.uuid4(), uuid.uuid4()
        await uploads.create(unused, "tester", f"raw/{unused}/source", 1000)
        await uploads.create(used, "tester", f"raw/{used}/source", 1000)
        assert await uploads.get(unused, "someone-else") is None
        job = dataclasses.replace(new_job("a"), id=used)
        await job_repository(db).create(sharing(job, f"raw/{used}/source"), None)
        keys = await uploads.delete_older_than(utcnow() + timedelta(seconds=1))
        assert f"raw/{unused}/source" in keys and f"raw/{used}/source" not in keys
        assert await uploads.get(used, "tester") is None
    finally:
        await db.dispose()


async def test_a_job_by_references_whole_path_is_twelve_statements(private_pg_url: str) -> None:
    """A job on a stored source, as the API and a worker run it: the earlier job's source
    read (1), the submission (its row key-share-locked, then the same three inserts as an
    upload's job), claim 2, finish 4, the answer's read 1. BEGIN/COMMIT come on top."""
    db = Database(private_pg_url)
    repo = job_repository(db)
    try:
        first = new_job("a")
        await repo.create(first, None)
        seen: list[str] = []

        def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
            seen.append(statement.split(None, 1)[0].upper())

        sa.event.listen(db.engine.sync_engine, "before_cursor_execute", count)
        found = await source_of_job(db, first.id, "tester")
        assert found is not None and found[0] == first.source
        job = new_job("a")
        await repo.create(job, None, source_of=(first.id, "tester"))
        await repo.claim_output(job.id, "a", stale_after=60)
        done = await repo.succeed_output(job.id, "a", 1, DONE)
        record = await repo.get(job.id)
        assert done.closed and record is not None and record.job.status == "succeeded"
        assert seen == ["SELECT"] + ["SELECT"] + ["INSERT"] * 3 + ["UPDATE"] * 2 + [
            "UPDATE",
            "UPDATE",
            "SELECT",
            "UPDATE",
        ] + ["SELECT"]
    finally:
        await db.dispose()


async def test_a_cleanup_meeting_a_job_being_made_on_the_source_waits_and_sees_it(
    private_pg_url: str,
) -> None:
    """The race the share-lock closes: cleanup deletes the earlier job while a job naming
    its source is being inserted. The DELETE waits for that insert, then the reference check
    sees the new job: the source is kept."""
    db, submitter, watcher = (Database(private_pg_url) for _ in range(3))
    repo = job_repository(db)
    try:
        first = new_job("a")
        key = f"raw/{first.id}/source.jpg"
        await finished(repo, sharing(first, key))
        await age(db, first.id)
        later = sharing(new_job("a"), key)
        now = utcnow()
        async with submitter.transaction() as s:
            # What ``create(source_of=...)`` does first, held open here.
            await s.execute(LOCK_SOURCE_OF, {"p_job_id": first.id, "p_owner": "tester"})
            cleanup = asyncio.create_task(repo.delete_older_than(now - timedelta(days=1)))
            while True:  # until the cleanup's DELETE is waiting for the lock
                async with watcher.reads() as w:
                    waiting = await w.scalar(
                        sa.text(
                            "SELECT count(*) FROM pg_stat_activity WHERE datname = "
                            "current_database() AND wait_event_type = 'Lock' "
                            "AND query LIKE 'DELETE FROM jobs%'"
                        )
                    )
                if waiting or cleanup.done():
                    break
                await asyncio.sleep(0.05)
            assert not cleanup.done()
            s.add(
                JobRow(
                    id=later.id,
                    owner="tester",
                    status="queued",
                    spec=later.spec,
                    source=later.source,
                    source_key=key,
                    pending_outputs=1,
                    webhook_attempts=0,
                    created_at=now,
                    updated_at=now,
                )
            )
        removed = await cleanup
        assert [(r.job.id, r.source_shared) for r in removed] == [(first.id, True)]
    finally:
        for d in (db, submitter, watcher):
            await d.dispose()
