"""A job's end, cancel and retry."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from pixtools.jobspec.status import TERMINAL_JOB
from pixtools.store.jobs.base import RepositoryBase
from pixtools.store.jobs.statements import OUTBOX, OUTPUTS
from pixtools.store.models import JobRow
from pixtools.store.types import utcnow


class Lifecycle(RepositoryBase):
    """How a job ends: closed by its finalizer or canceled; and its failed outputs retried."""

    async def complete_job(
        self,
        job_id: uuid.UUID,
        *,
        archive_status: str | None,
        archive_key: str | None,
    ) -> str | None:
        """Set the terminal status from the outputs; enqueue the webhook. None if already done."""
        async with self.db.transaction() as s:
            job = await s.get(JobRow, job_id, with_for_update=True)
            if job is None or job.status in TERMINAL_JOB:
                return None
            closed = await self._close(s, job.id, job.webhook_url, archive_status, archive_key)
        self.on_finished(*closed)  # counted once committed
        self.db.wake_local()
        self.db.job_finished_local(str(job_id))
        return closed[0]

    async def cancel(self, job_id: uuid.UUID, owner: str | None) -> str | None:
        """Cancel an unfinished job: outputs not yet finished become ``canceled`` (a worker
        that claims one finds nothing to do; one rendering it now is fenced off and its
        result dropped), the job ends ``canceled`` and its webhook is sent.

        Returns None when the job is unknown (to this owner), else the job's status before
        (a terminal one means nothing was changed).
        """
        now = utcnow()
        async with self.db.transaction() as s:
            job = await s.get(JobRow, job_id, with_for_update=True)
            if job is None or (owner is not None and job.owner != owner):
                return None
            if job.status in TERMINAL_JOB:
                return job.status
            before = job.status
            await s.execute(
                sa.update(OUTPUTS)
                .where(OUTPUTS.c.job_id == job_id, OUTPUTS.c.status.in_(("pending", "running")))
                .values(status="canceled", error="canceled", finished_at=now, heartbeat_at=None)
            )
            # Outbox messages not yet published for this job's outputs need not go out.
            await s.execute(
                sa.delete(OUTBOX).where(
                    OUTBOX.c.job_id == job_id,
                    OUTBOX.c.sent_at.is_(None),
                    OUTBOX.c.actor.in_(tuple(self.routes.process.values())),
                )
            )
            job.status = "canceled"
            job.pending_outputs = 0
            job.error = "canceled by request"
            job.updated_at = now
            job.finished_at = now
            if job.archive_status is not None:
                job.archive_status = "canceled"
            if job.webhook_url:
                job.webhook_status = "pending"
                s.add(self.routes.webhook_delivery(job_id))
            created = job.created_at
        self.on_finished("canceled", created, now)  # counted once committed
        self.db.wake_local()
        self.db.job_finished_local(str(job_id))
        return before

    async def retry_failed_outputs(self, job_id: uuid.UUID, owner: str | None) -> list[str] | None:
        """Re-run the failed outputs of a finished job; None if unknown, not finished or
        canceled."""
        now = utcnow()
        async with self.db.transaction() as s:
            job = await s.get(JobRow, job_id, with_for_update=True)
            if job is None or (owner is not None and job.owner != owner):
                return None
            # A canceled job stays canceled: its outputs are not all finished work to redo.
            if job.status not in TERMINAL_JOB or job.status == "canceled":
                return None
            outputs = (await self._outputs(s, [job_id])).get(job_id, [])
            failed = [o for o in outputs if o.status == "failed"]
            for o in failed:
                o.status = "pending"
                o.attempts = 0
                o.error = None
                o.finished_at = None
                s.add(self.routes.render(o.queue, job_id, o.name))
            if failed:
                job.status = "queued"
                job.pending_outputs = len(failed)
                job.finished_at = None
                job.error = None
                job.updated_at = now
                if job.archive_status is not None:
                    job.archive_status = "pending"
                if job.webhook_url:
                    job.webhook_status = "pending"
        self.db.wake_local()
        return [o.name for o in failed]
