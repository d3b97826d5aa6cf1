"""Removing finished jobs: one on request, the old ones at cleanup."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from pixtools.jobspec.status import TERMINAL_JOB
from pixtools.store.jobs.base import RepositoryBase
from pixtools.store.jobs.records import JobRecord
from pixtools.store.models import IdempotencyKeyRow, JobRow, OutboxRow, OutputRow


class Removal(RepositoryBase):
    """Deleting finished jobs' rows; the objects they name are the caller's to delete."""

    async def delete_finished(self, job_id: uuid.UUID, owner: str | None) -> JobRecord | str | None:
        """Remove one finished job and its rows; returns what was removed (its object keys
        are the caller's to delete), its status when it is not finished (nothing removed), or
        None when it is unknown to this owner."""
        async with self.db.transaction() as s:
            job = await s.get(JobRow, job_id, with_for_update=True)
            if job is None or (owner is not None and job.owner != owner):
                return None
            if job.status not in TERMINAL_JOB:
                return job.status
            record = JobRecord(job, (await self._outputs(s, [job_id])).get(job_id, []))
            await self._delete_rows(s, [job_id])
            await self._mark_shared_sources(s, [record])
        return record

    @staticmethod
    async def _delete_rows(s: AsyncSession, ids: list[uuid.UUID]) -> None:
        await s.execute(sa.delete(OutputRow).where(OutputRow.job_id.in_(ids)))
        await s.execute(sa.delete(IdempotencyKeyRow).where(IdempotencyKeyRow.job_id.in_(ids)))
        await s.execute(sa.delete(OutboxRow).where(OutboxRow.job_id.in_(ids)))
        await s.execute(sa.delete(JobRow).where(JobRow.id.in_(ids)))

    async def delete_older_than(self, cutoff: datetime, limit: int = 500) -> list[JobRecord]:
        """Remove terminal jobs created before ``cutoff``; returns what was removed."""
        async with self.db.transaction() as s:
            jobs = list(
                (
                    await s.scalars(
                        sa.select(JobRow)
                        .where(JobRow.created_at < cutoff, JobRow.status.in_(TERMINAL_JOB))
                        .limit(limit)
                    )
                ).all()
            )
            outputs = await self._outputs(s, [j.id for j in jobs])
            removed = [JobRecord(j, outputs.get(j.id, [])) for j in jobs]
            if jobs:
                await self._delete_rows(s, [j.id for j in jobs])
                await self._mark_shared_sources(s, removed)
        return removed

    @staticmethod
    async def _mark_shared_sources(s: AsyncSession, removed: list[JobRecord]) -> None:
        """After the rows are deleted: which removed jobs' sources another job still uses.
        A new statement sees every job committed meanwhile (a job made by reference
        share-locks its source's row, so the DELETE before this waited for it)."""
        keys = {r.job.source_key for r in removed if r.job.source_key}
        if not keys:
            return
        shared = set(
            await s.scalars(
                sa.select(JobRow.source_key).where(JobRow.source_key.in_(keys)).distinct()
            )
        )
        for record in removed:
            record.source_shared = record.job.source_key in shared
