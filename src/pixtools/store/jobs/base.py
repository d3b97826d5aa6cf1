"""What every part of the job repository shares: its database, its routes, the job's
count-down and close."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from pixtools.jobspec.status import final_status
from pixtools.store.database import Database
from pixtools.store.jobs.statements import CLOSE, COUNT_DOWN, OUTPUT_STATES
from pixtools.store.messages import Routes
from pixtools.store.models import OutputRow
from pixtools.store.types import utcnow

#: Told of each job that reaches a terminal status: (status, submitted at, finished at).
OnFinished = Callable[[str, datetime, datetime], None]


def _nothing(*_: object) -> None:
    return None


@dataclass(frozen=True, slots=True)
class _Counted:
    """The job after an output's count-down (its row is locked until the commit)."""

    job_id: uuid.UUID
    pending_outputs: int
    status: str
    archive_status: str | None
    webhook_url: str | None


class RepositoryBase:
    """Jobs and their outputs. Each public method is one explicit transaction."""

    def __init__(self, db: Database, routes: Routes, *, on_finished: OnFinished = _nothing) -> None:
        self.db = db
        self.routes = routes
        self.on_finished = on_finished

    @staticmethod
    async def _outputs(
        s: AsyncSession, job_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[OutputRow]]:
        if not job_ids:
            return {}
        rows = await s.scalars(
            sa.select(OutputRow)
            .where(OutputRow.job_id.in_(job_ids))
            .order_by(OutputRow.job_id, OutputRow.position)
        )
        grouped: dict[uuid.UUID, list[OutputRow]] = {}
        for row in rows:
            grouped.setdefault(row.job_id, []).append(row)
        return grouped

    async def _count_down(
        self, s: AsyncSession, job_id: uuid.UUID, now: datetime, *, enqueue_finalize: bool
    ) -> _Counted:
        """Fan-in: an atomic decrement of the job's pending count; returns the job after it.

        The worker whose output brings it to zero finalizes the job at once, in process
        (a finalize message would queue behind every other pending output). Should that
        worker die first, the reconciler finds the job (all outputs terminal, not finished)
        and enqueues finalize. Other callers enqueue finalize through the outbox here.
        """
        row = (await s.execute(COUNT_DOWN, {"p_job_id": job_id, "p_now": now})).one()
        job = _Counted(job_id, row.pending_outputs, row.status, row.archive_status, row.webhook_url)
        if job.pending_outputs == 0 and enqueue_finalize:
            s.add(self.routes.finalize_job(job_id))
        return job

    async def _close(
        self,
        s: AsyncSession,
        job_id: uuid.UUID,
        webhook_url: str | None,
        archive_status: str | None,
        archive_key: str | None,
    ) -> tuple[str, datetime, datetime]:
        """Terminal status from the outputs, and the webhook's outbox row. (Setting
        ``finished_at`` fires the trigger that NOTIFYs the waiting clients.) Returns the
        status, submit and finish times, which the caller counts once committed."""
        outputs = (await s.execute(OUTPUT_STATES, {"p_job_id": job_id})).all()
        status = final_status(o.status for o in outputs)
        failed = [o.name for o in outputs if o.status == "failed"]
        now = utcnow()
        created = await s.scalar(
            CLOSE,
            {
                "p_job_id": job_id,
                "p_status": status,
                "p_error": f"outputs failed: {', '.join(failed)}" if failed else None,
                "p_archive_status": archive_status,
                "p_archive_key": archive_key,
                "p_webhook_status": "pending" if webhook_url else None,
                "p_now": now,
            },
        )
        if webhook_url:
            s.add(self.routes.webhook_delivery(job_id))
        return status, created or now, now
