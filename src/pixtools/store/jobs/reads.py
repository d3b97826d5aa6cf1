"""Reads: one job, a page of jobs, whether an object is still rendered from."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa

from pixtools.store.jobs.base import RepositoryBase
from pixtools.store.jobs.records import JobRecord
from pixtools.store.jobs.statements import GET, filename_contains
from pixtools.store.models import JobRow
from pixtools.store.types import DateTimeUTC


class Reads(RepositoryBase):
    """Reads of jobs: one, a page, and whether a source object is still rendered from."""

    async def get(self, job_id: uuid.UUID, owner: str | None = None) -> JobRecord | None:
        """The job and its outputs, in one query (a long-polling client reads twice a job)."""
        async with self.db.reads() as s:
            rows = (await s.execute(GET, {"p_job_id": job_id})).all()
        if not rows or (owner is not None and rows[0][0].owner != owner):
            return None
        return JobRecord(rows[0][0], [out for _, out in rows if out is not None])

    async def page(
        self,
        owner: str | None,
        *,
        status: str | None,
        limit: int,
        before: tuple[datetime, uuid.UUID] | None,
        name: str | None = None,
    ) -> list[JobRecord]:
        """Newest first; ``before`` is the (created_at, id) of the last job of the previous page;
        ``name``: only jobs whose source filename contains it (case-insensitive)."""
        q = sa.select(JobRow)
        if owner is not None:
            q = q.where(JobRow.owner == owner)
        if status is not None:
            q = q.where(JobRow.status == status)
        if name:
            q = q.where(filename_contains(name))
        if before is not None:
            after = sa.tuple_(*before, types=[DateTimeUTC(), sa.Uuid()])  # naive: UTC
            q = q.where(sa.tuple_(JobRow.created_at, JobRow.id) < after)
        q = q.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
        async with self.db.reads() as s:
            jobs = list((await s.scalars(q)).all())
            outputs = await self._outputs(s, [j.id for j in jobs])
        return [JobRecord(j, outputs.get(j.id, [])) for j in jobs]

    async def source_in_use(self, key: str) -> bool:
        """Does any job still render from the object ``key`` (before removing it)?"""
        async with self.db.reads() as s:
            found = await s.scalar(sa.select(JobRow.id).where(JobRow.source_key == key).limit(1))
        return found is not None
