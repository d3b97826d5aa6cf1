"""Recovery: work lost with a worker, a broker or an embedded process, found and sent again."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from pixtools.jobspec.status import TERMINAL_JOB
from pixtools.store.jobs.base import RepositoryBase
from pixtools.store.models import JobRow, OutboxRow, OutputRow
from pixtools.store.types import utcnow


class Recovery(RepositoryBase):
    """The sweeps maintenance runs to find lost work and send it again."""

    async def requeue_stale_outputs(
        self, *, stale_after: float, max_attempts: int
    ) -> tuple[int, int]:
        """Re-publish outputs whose worker died; fail those out of attempts. (requeued, failed)."""
        now = utcnow()
        stale = now - timedelta(seconds=stale_after)
        requeued = failed = 0
        async with self.db.transaction() as s:
            rows = (
                await s.scalars(
                    sa.select(OutputRow)
                    .where(OutputRow.status == "running", OutputRow.heartbeat_at < stale)
                    .with_for_update(skip_locked=True)
                    .limit(500)
                )
            ).all()
            for row in rows:
                if row.attempts >= max_attempts:
                    row.status = "failed"
                    row.error = (
                        f"worker lost {row.attempts} times (recovered by the reconciler); giving up"
                    )
                    row.finished_at = now
                    row.heartbeat_at = None
                    await self._count_down(s, row.job_id, now, enqueue_finalize=True)
                    failed += 1
                else:
                    row.status = "pending"
                    row.error = (
                        f"worker lost during attempt {row.attempts}; re-queued by the reconciler"
                    )
                    row.heartbeat_at = None
                    s.add(self.routes.render(row.queue, row.job_id, row.name))
                    requeued += 1
        if rows:
            self.db.wake_local()
        return requeued, failed

    async def republish_pending(self) -> int:
        """Publish again every pending output (after the broker lost its queues).

        Duplicates are harmless (claims are idempotent); a lost message is not.
        """
        async with self.db.transaction() as s:
            rows = (
                await s.execute(
                    sa.select(OutputRow.job_id, OutputRow.name, OutputRow.queue).where(
                        OutputRow.status == "pending"
                    )
                )
            ).all()
            for job_id, name, queue in rows:
                s.add(self.routes.render(queue, job_id, name))
        if rows:
            self.db.wake_local()
        return len(rows)

    async def finalize_forgotten(self) -> int:
        """Enqueue finalize for non-terminal jobs whose outputs are all terminal (lost message)."""
        async with self.db.transaction() as s:
            ids = (
                await s.scalars(
                    sa.select(JobRow.id)
                    .where(JobRow.status.in_(("queued", "running")), JobRow.pending_outputs <= 0)
                    .where(
                        ~sa.exists().where(
                            OutboxRow.job_id == JobRow.id,
                            OutboxRow.actor == self.routes.finalize,
                            OutboxRow.sent_at.is_(None),
                        )
                    )
                    .limit(500)
                )
            ).all()
            for job_id in ids:
                s.add(self.routes.finalize_job(job_id))
        if ids:
            self.db.wake_local()
        return len(ids)

    async def resume_unfinished(self, *, started: datetime | None = None) -> dict[str, int]:
        """Embedded start: nothing else runs on this database, and the in-process broker
        lost every message when the process died. Every running output is re-queued (its
        worker is gone), every pending output published again, forgotten jobs finalized and
        unfinished webhook deliveries sent again."""
        republished = await self.republish_pending()  # first: not the ones re-queued below
        # Outputs whose last heartbeat predates this process's start (``started``): the
        # workers of this process may already have claimed new ones.
        since = 0.0 if started is None else max(0.0, (utcnow() - started).total_seconds())
        requeued, failed = await self.requeue_stale_outputs(stale_after=since, max_attempts=1 << 30)
        finalized = await self.finalize_forgotten()
        async with self.db.transaction() as s:
            ids = (
                await s.scalars(
                    sa.select(JobRow.id).where(
                        JobRow.status.in_(TERMINAL_JOB),
                        JobRow.webhook_url.is_not(None),
                        JobRow.webhook_status.in_(("pending", "circuit_open")),
                    )
                )
            ).all()
            for job_id in ids:
                s.add(self.routes.webhook_delivery(job_id))
        if ids:
            self.db.wake_local()
        return {
            "running_requeued": requeued + failed,
            "pending_republished": republished,
            "finalized": finalized,
            "webhooks_resent": len(ids),
        }
