"""Presigned uploads: who asked for one, under which key, until a job is made from it.

The job made from an upload takes the upload's id as its own, so the job's primary key is
what makes an upload usable once; the row stays until cleanup (its object then goes too,
unless a job renders from it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from pixtools.store.database import Database
from pixtools.store.models import JobRow, UploadRow
from pixtools.store.types import utcnow

_SOURCE_OF = sa.select(JobRow.source, JobRow.metadata_).where(
    JobRow.id == sa.bindparam("p_job_id"), JobRow.owner == sa.bindparam("p_owner")
)


async def source_of_job(
    db: Database, job_id: uuid.UUID, owner: str
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """The source facts and metadata of ``owner``'s job, if there is one (one light read:
    a job by reference needs nothing else of the earlier job)."""
    async with db.reads() as s:
        row = (await s.execute(_SOURCE_OF, {"p_job_id": job_id, "p_owner": owner})).one_or_none()
    return (row[0], row[1]) if row is not None else None


class UploadRepository:
    """Rows of ``uploads``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(self, upload_id: uuid.UUID, owner: str, key: str, max_bytes: int) -> None:
        """Record an upload handed out to ``owner``."""
        async with self.db.transaction() as s:
            s.add(
                UploadRow(
                    id=upload_id, owner=owner, key=key, max_bytes=max_bytes, created_at=utcnow()
                )
            )

    async def get(self, upload_id: uuid.UUID, owner: str) -> UploadRow | None:
        """The upload if it is ``owner``'s."""
        async with self.db.reads() as s:
            row = await s.get(UploadRow, upload_id)
        return row if row is not None and row.owner == owner else None

    async def delete_older_than(self, cutoff: datetime, limit: int = 500) -> list[str]:
        """Forget uploads handed out before ``cutoff``; return the keys of those no job
        renders from (their objects are the caller's to remove)."""
        async with self.db.transaction() as s:
            rows = list(
                (
                    await s.scalars(
                        sa.select(UploadRow).where(UploadRow.created_at < cutoff).limit(limit)
                    )
                ).all()
            )
            if not rows:
                return []
            await s.execute(sa.delete(UploadRow).where(UploadRow.id.in_([r.id for r in rows])))
            keys = {r.key for r in rows}
            used = set(
                await s.scalars(sa.select(JobRow.source_key).where(JobRow.source_key.in_(keys)))
            )
        return sorted(keys - used)
