"""Submission: a job, its outputs, their messages and its idempotency key at once."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError

from pixtools.store.jobs.base import RepositoryBase
from pixtools.store.jobs.records import (
    IdempotencyClaim,
    IdempotencyConflict,
    JobRecord,
    NewJob,
    SourceGone,
)
from pixtools.store.jobs.statements import (
    INSERT_JOB,
    INSERT_OUTBOX,
    INSERT_OUTPUTS,
    LOCK_SOURCE_OF,
    owned_by,
)
from pixtools.store.models import IdempotencyKeyRow, JobRow, OutputRow
from pixtools.store.types import utcnow


class Submission(RepositoryBase):
    """Inserting a job and all that goes with it; finding the job an idempotency key made."""

    async def create(
        self,
        job: NewJob,
        idempotency: IdempotencyClaim | None,
        *,
        metadata: dict[str, Any] | None = None,
        source_of: tuple[uuid.UUID, str] | None = None,
    ) -> JobRecord:
        """Insert the job, its outputs, their outbox messages and the idempotency key at once;
        return the job as stored (no second read).

        Raises ``IdempotencyConflict`` when the key is already taken (by a concurrent twin).
        With ``source_of`` (job id, owner: the job whose source object this one shares), that
        job's row is share-locked first, so a concurrent cleanup either removes it before
        (``SourceGone``) or sees this job's reference when it checks (after this commits).
        """
        now = utcnow()
        job_values = {
            "id": job.id,
            "owner": job.owner,
            "status": "queued",
            "spec": job.spec,
            "source": job.source,
            "source_key": job.source.get("key"),
            "metadata": metadata,
            "pending_outputs": len(job.outputs),
            "archive_status": "pending" if job.archive else None,
            "archive_key": None,
            "webhook_url": job.webhook_url,
            "webhook_status": "pending" if job.webhook_url else None,
            "webhook_attempts": 0,
            "error": None,
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
        }
        outputs = [
            {
                "job_id": job.id,
                "name": out.name,
                "position": out.position,
                "status": "pending",
                "queue": out.queue,
                "steps": out.steps,
                "attempts": 0,
            }
            for out in job.outputs
        ]
        try:
            async with self.db.transaction() as s:
                if (
                    source_of is not None
                    and await s.scalar(LOCK_SOURCE_OF, owned_by(*source_of)) is None
                ):
                    raise SourceGone(str(source_of[0]))
                await s.execute(INSERT_JOB, job_values)
                await s.execute(INSERT_OUTPUTS, outputs)
                await s.execute(
                    INSERT_OUTBOX,
                    [
                        self.routes.values(
                            out.queue,
                            self.routes.process[out.queue],
                            [str(job.id), out.name],
                            job.id,
                        )
                        for out in job.outputs
                    ],
                )
                if idempotency is not None:
                    s.add(
                        IdempotencyKeyRow(
                            owner=idempotency.owner,
                            key=idempotency.key,
                            request_hash=idempotency.request_hash,
                            job_id=job.id,
                            created_at=now,
                        )
                    )
        except IntegrityError:
            if idempotency is None:
                raise
            found = await self.find_idempotent(idempotency.owner, idempotency.key)
            if found is None:
                raise
            raise IdempotencyConflict(
                found[1], same_request=found[0] == idempotency.request_hash
            ) from None
        self.db.wake_local()
        # The job as stored (no second read): rows built from the values just inserted
        # (the one column whose attribute is named differently: ``metadata_``).
        job_row = JobRow(**{k: v for k, v in job_values.items() if k != "metadata"})
        job_row.metadata_ = metadata
        return JobRecord(job_row, [OutputRow(**o) for o in outputs])

    async def find_idempotent(self, owner: str, key: str) -> tuple[str, uuid.UUID] | None:
        """(request hash, job id) recorded for this owner's key, if any."""
        async with self.db.reads() as s:
            row = await s.get(IdempotencyKeyRow, (owner, key))
            return (row.request_hash, row.job_id) if row else None
