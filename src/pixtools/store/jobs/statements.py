"""The per-job hot path, as prebuilt Core statements.

Every job runs these (submit, claim, finish, reads). Built once with bound parameters:
building an ORM statement per call was half of the CPU of recording an output (profiled).
Parameter names carry a ``p_`` prefix (plain column names are reserved for SET values).
"""

from __future__ import annotations

import uuid
from typing import Any, cast

import sqlalchemy as sa

from pixtools.store.models import JobRow, OutboxRow, OutputRow

JOBS = cast(sa.Table, JobRow.__table__)
OUTPUTS = cast(sa.Table, OutputRow.__table__)
OUTBOX = cast(sa.Table, OutboxRow.__table__)
_P = sa.bindparam


def _of_job(column: sa.Column[Any]) -> sa.ScalarSelect[Any]:
    """``column`` of the output's job, as a scalar subquery correlated to ``outputs``
    (SQLite's RETURNING sees only the updated table, so no UPDATE ... FROM)."""
    return sa.select(column).where(JOBS.c.id == OUTPUTS.c.job_id).scalar_subquery()


THIS_OUTPUT = (OUTPUTS.c.job_id == _P("p_job_id"), OUTPUTS.c.name == _P("p_name"))
# The output is running under this attempt: the fence every worker write goes through.
HELD = (
    *THIS_OUTPUT,
    OUTPUTS.c.status == "running",
    OUTPUTS.c.attempts == _P("p_attempt"),
)
HEARTBEAT = sa.update(OUTPUTS).where(*HELD).values(heartbeat_at=_P("p_now"))
REQUEUE = (
    sa.update(OUTPUTS)
    .where(*HELD)
    .values(status="pending", error=_P("p_error"), heartbeat_at=None)
    .returning(OUTPUTS.c.queue)
)
INSERT_JOB = sa.insert(JOBS)
INSERT_OUTPUTS = sa.insert(OUTPUTS)
INSERT_OUTBOX = sa.insert(OUTBOX)
CLAIM = (
    sa.update(OUTPUTS)
    .where(
        *THIS_OUTPUT,
        sa.or_(
            OUTPUTS.c.status == "pending",
            sa.and_(OUTPUTS.c.status == "running", OUTPUTS.c.heartbeat_at < _P("p_stale")),
        ),
    )
    .values(
        status="running",
        attempts=OUTPUTS.c.attempts + 1,
        started_at=_P("p_now"),
        heartbeat_at=_P("p_now"),
    )
    .returning(
        OUTPUTS.c.attempts,
        OUTPUTS.c.steps,
        _of_job(JOBS.c.source).label("source"),
        _of_job(JOBS.c.status).label("job_status"),
    )
)
HOLDER = sa.select(OUTPUTS.c.status, OUTPUTS.c.heartbeat_at).where(*THIS_OUTPUT)
JOB_RUNNING = (
    sa.update(JOBS)
    .where(JOBS.c.id == _P("p_job_id"), JOBS.c.status == "queued")
    .values(status="running", updated_at=_P("p_now"))
)
SUCCEED = (
    sa.update(OUTPUTS)
    .where(*HELD)
    .values(
        status="succeeded",
        object_key=_P("p_object_key"),
        format=_P("p_format"),
        content_type=_P("p_content_type"),
        width=_P("p_width"),
        height=_P("p_height"),
        bytes=_P("p_bytes"),
        result=_P("p_result", type_=OUTPUTS.c.result.type),
        error=None,
        finished_at=_P("p_now"),
        heartbeat_at=None,
    )
)
FAIL = (
    sa.update(OUTPUTS)
    .where(*HELD)
    .values(status="failed", error=_P("p_error"), finished_at=_P("p_now"), heartbeat_at=None)
)
COUNT_DOWN = (
    sa.update(JOBS)
    .where(JOBS.c.id == _P("p_job_id"))
    .values(pending_outputs=JOBS.c.pending_outputs - 1, updated_at=_P("p_now"))
    .returning(JOBS.c.pending_outputs, JOBS.c.status, JOBS.c.archive_status, JOBS.c.webhook_url)
)
OUTPUT_STATES = (
    sa.select(OUTPUTS.c.name, OUTPUTS.c.status)
    .where(OUTPUTS.c.job_id == _P("p_job_id"))
    .order_by(OUTPUTS.c.position)
)
CLOSE = (
    sa.update(JOBS)
    .where(JOBS.c.id == _P("p_job_id"))
    .values(
        status=_P("p_status"),
        error=_P("p_error"),
        archive_status=_P("p_archive_status"),
        archive_key=_P("p_archive_key"),
        webhook_status=_P("p_webhook_status"),
        updated_at=_P("p_now"),
        finished_at=_P("p_now"),
    )
    .returning(JOBS.c.created_at)
)
GET = (
    sa.select(JobRow, OutputRow)
    .outerjoin(OutputRow, OutputRow.job_id == JobRow.id)
    .where(JobRow.id == _P("p_job_id"))
    .order_by(OutputRow.position)
)


# FOR KEY SHARE (as a foreign key check takes): it conflicts with the DELETE of cleanup, not
# with the UPDATEs of the earlier job's own workers, nor with other jobs naming the source.
LOCK_SOURCE_OF = (
    sa.select(JOBS.c.id)
    .where(JOBS.c.id == _P("p_job_id"), JOBS.c.owner == _P("p_owner"))
    .with_for_update(read=True, key_share=True)
)


def owned_by(job_id: uuid.UUID, owner: str) -> dict[str, Any]:
    """The parameters of ``LOCK_SOURCE_OF``: the job and the owner it must have."""
    return {"p_job_id": job_id, "p_owner": owner}


def filename_contains(text: str) -> sa.ColumnElement[bool]:
    """The source filename contains ``text``, case-insensitively, wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    filename: sa.ColumnElement[str] = JobRow.source["filename"].as_string()
    return filename.ilike(f"%{escaped}%", escape="\\")
