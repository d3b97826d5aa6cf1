"""An output's work (the actors): claim, heartbeat, finish, retry later."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from pixtools.jobspec.status import TERMINAL_JOB
from pixtools.store.jobs.base import RepositoryBase
from pixtools.store.jobs.records import Claim, Finished, Held, OutputDone
from pixtools.store.jobs.statements import (
    CLAIM,
    FAIL,
    HEARTBEAT,
    HOLDER,
    JOB_RUNNING,
    REQUEUE,
    SUCCEED,
)
from pixtools.store.models import JobRow
from pixtools.store.types import utcnow


class OutputWork(RepositoryBase):
    """What a worker does to an output: claim it, beat its heartbeat, finish it, retry it later."""

    async def claim_output(
        self, job_id: uuid.UUID, name: str, *, stale_after: float
    ) -> Claim | Held | None:
        """Take an output for work; ``Held`` when it is fresh in another attempt's hands;
        None when it is finished (or canceled, or unknown).

        A ``running`` output whose heartbeat is older than ``stale_after`` seconds belongs to
        a worker that died: it may be taken over (the attempt number fences the old worker).
        """
        now = utcnow()
        stale = now - timedelta(seconds=stale_after)
        async with self.db.transaction() as s:
            params = {"p_job_id": job_id, "p_name": name, "p_stale": stale, "p_now": now}
            claimed = (await s.execute(CLAIM, params)).one_or_none()
            if claimed is None:
                holder = (await s.execute(HOLDER, params)).one_or_none()
                if holder is None or holder.status != "running" or holder.heartbeat_at is None:
                    return None
                stale_at = holder.heartbeat_at + timedelta(seconds=stale_after)
                return Held(max(0.0, (stale_at - now).total_seconds()))
            if claimed.job_status == "queued":  # the job's first output to start
                await s.execute(JOB_RUNNING, params)
            source = claimed.source
        # (PostgreSQL: the outputs trigger NOTIFYs other processes; this wakes this one's.)
        self.db.job_progress_local(str(job_id))
        return Claim(claimed.attempts, claimed.steps, source["key"], source.get("url"))

    async def heartbeat(self, job_id: uuid.UUID, name: str, attempt: int) -> bool:
        """Touch a running output; False when this attempt no longer owns it."""
        async with self.db.transaction() as s:
            params = {"p_job_id": job_id, "p_name": name, "p_attempt": attempt, "p_now": utcnow()}
            result = await s.execute(HEARTBEAT, params)
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def succeed_output(
        self, job_id: uuid.UUID, name: str, attempt: int, done: OutputDone
    ) -> Finished:
        """Record success (falsy when this attempt was fenced off: nothing written)."""
        return await self._finish_output(
            job_id,
            name,
            attempt,
            SUCCEED,
            {
                "p_object_key": done.object_key,
                "p_format": done.format,
                "p_content_type": done.content_type,
                "p_width": done.width,
                "p_height": done.height,
                "p_bytes": done.bytes,
                "p_result": done.result,
            },
        )

    async def fail_output(self, job_id: uuid.UUID, name: str, attempt: int, error: str) -> Finished:
        """Record a permanent failure of this output."""
        return await self._finish_output(job_id, name, attempt, FAIL, {"p_error": error})

    async def _finish_output(
        self,
        job_id: uuid.UUID,
        name: str,
        attempt: int,
        statement: sa.Update,
        values: dict[str, Any],
    ) -> Finished:
        now = utcnow()
        params = {"p_job_id": job_id, "p_name": name, "p_attempt": attempt, "p_now": now}
        async with self.db.transaction() as s:
            updated = await s.execute(statement, params | values)
            if not updated.rowcount:  # type: ignore[attr-defined]
                return Finished(recorded=False)
            job = await self._count_down(s, job_id, now, enqueue_finalize=False)
            remaining = job.pending_outputs
            closed = None
            # The count-down's UPDATE holds the job's row lock until this commits.
            if remaining == 0 and job.archive_status is None and job.status not in TERMINAL_JOB:
                # No archive to build: close the job in this same transaction.
                closed = await self._close(s, job_id, job.webhook_url, None, None)
        if closed:
            self.on_finished(*closed)
            self.db.wake_local()
            self.db.job_finished_local(str(job_id))
        else:
            self.db.job_progress_local(str(job_id))
        return Finished(recorded=True, last=remaining == 0, closed=closed is not None)

    async def retry_output_later(
        self, job_id: uuid.UUID, name: str, attempt: int, error: str, delay: float
    ) -> bool:
        """Give a transiently failed output back to the queue after ``delay`` seconds."""
        async with self.db.transaction() as s:
            params = {"p_job_id": job_id, "p_name": name, "p_attempt": attempt, "p_error": error}
            row = (await s.execute(REQUEUE, params)).scalar_one_or_none()
            if row is None:
                return False
            s.add(self.routes.render(row, job_id, name, delay))
        self.db.wake_local()
        self.db.job_progress_local(str(job_id))
        return True

    async def set_source_facts(self, job_id: uuid.UUID, facts: dict[str, Any]) -> None:
        """Fill in a URL source's facts once the worker has fetched it."""
        async with self.db.transaction() as s:
            job = await s.get(JobRow, job_id, with_for_update=True)
            if job is not None and job.source.get("width") is None:
                job.source = {**job.source, **facts}
