"""The job repository: every read and write of jobs, outputs, the outbox and idempotency keys.

Route handlers, actors and maintenance tasks reach the database only through here. Each
public method is one explicit transaction. State changes that must be announced to the
workers write an outbox row in the same transaction (see ``pixtools.worker.relay``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pixtools.jobspec.status import TERMINAL_JOB, final_status
from pixtools.observability.metrics import job_finished
from pixtools.observability.tracing import current_traceparent
from pixtools.store.database import Database
from pixtools.store.models import IdempotencyKeyRow, JobRow, OutboxRow, OutputRow
from pixtools.store.previews import output_preview_key, source_preview_key

PROCESS_ACTOR = {"standard": "process_output", "ml": "process_output_ml"}
FINALIZE_ACTOR = "finalize_job"
WEBHOOK_ACTOR = "deliver_webhook"


def utcnow() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime) -> datetime:
    """SQLite returns naive datetimes; everything we store is UTC."""
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class NewOutput:
    name: str
    position: int
    queue: str
    steps: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class NewJob:
    id: uuid.UUID
    owner: str
    spec: dict[str, Any]
    source: dict[str, Any]
    webhook_url: str | None
    archive: bool
    outputs: list[NewOutput]


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    owner: str
    key: str
    request_hash: str


@dataclass(slots=True)
class JobRecord:
    job: JobRow
    outputs: list[OutputRow] = field(default_factory=list)
    #: Set when the job is deleted: another job still renders from this job's source object.
    source_shared: bool = False

    def object_keys(self) -> list[str]:
        """Every object this job may have stored, previews included; its source only when no
        other job still renders from it (the source goes with the last job using it)."""
        jid = str(self.job.id)
        keys = [None if self.source_shared else self.job.source_key, self.job.archive_key]
        keys.append(source_preview_key(jid))
        for o in self.outputs:
            keys += [o.object_key, output_preview_key(jid, o.name)]
        return [k for k in keys if k]


@dataclass(frozen=True, slots=True)
class OutputDone:
    """A finished output: an object written (or an analysis result only)."""

    object_key: str | None
    format: str | None
    content_type: str | None
    width: int | None
    height: int | None
    bytes: int | None
    result: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Claim:
    """An output taken for work: its attempt number (the fence), steps and source object."""

    attempts: int
    steps: list[Any]
    source_key: str
    source_url: str | None = None  # a URL source: fetched into ``source_key`` first


@dataclass(frozen=True, slots=True)
class Held:
    """The output is running under another attempt whose heartbeat is still fresh:
    ``stale_in`` seconds from now that attempt is presumed dead and may be taken over."""

    stale_in: float


@dataclass(frozen=True, slots=True)
class Finished:
    """What recording an output's end did: ``recorded`` is False when this attempt had been
    fenced off (nothing written); ``last`` when it was the job's last pending output;
    ``closed`` when the job was finished with it (else the caller runs finalize)."""

    recorded: bool
    last: bool = False
    closed: bool = False  # the job was finished in the same transaction (nothing to archive)

    def __bool__(self) -> bool:
        return self.recorded


class SourceGone(LookupError):
    """The job whose source a new job names is gone (removed, or not the owner's)."""


class IdempotencyConflict(Exception):
    """The key was used before; ``job_id`` and whether the request matches are attached."""

    def __init__(self, job_id: uuid.UUID, same_request: bool) -> None:
        super().__init__(str(job_id))
        self.job_id = job_id
        self.same_request = same_request


def _outbox_values(
    queue: str, actor: str, args: list[Any], job_id: uuid.UUID | None, delay: float = 0.0
) -> dict[str, Any]:
    now = utcnow()
    return {
        "message_id": uuid.uuid4(),
        "queue": queue,
        "actor": actor,
        "args": args,
        "job_id": job_id,
        "created_at": now,
        "available_at": now + timedelta(seconds=delay),
        "publish_attempts": 0,
        "trace_context": current_traceparent(),
    }


def _outbox_row(
    queue: str, actor: str, args: list[Any], job_id: uuid.UUID | None, delay: float = 0.0
) -> OutboxRow:
    return OutboxRow(**_outbox_values(queue, actor, args, job_id, delay))


def _webhook_message(job_id: uuid.UUID) -> OutboxRow:
    """A new delivery of the job's webhook (its own delivery id, kept across its retries)."""
    return _outbox_row("standard", WEBHOOK_ACTOR, [str(job_id), str(uuid.uuid4())], job_id)


# --- the per-job hot path, as prebuilt Core statements ------------------------------------
# Every job runs these (submit, claim, finish, reads). Built once with bound parameters:
# building an ORM statement per call was half of the CPU of recording an output (profiled).
# Parameter names carry a ``p_`` prefix (plain column names are reserved for SET values).

_jobs = cast(sa.Table, JobRow.__table__)
_outputs = cast(sa.Table, OutputRow.__table__)
_outbox = cast(sa.Table, OutboxRow.__table__)
_P = sa.bindparam


def _of_job(column: sa.Column[Any]) -> sa.ScalarSelect[Any]:
    """``column`` of the output's job, as a scalar subquery correlated to ``outputs``
    (SQLite's RETURNING sees only the updated table, so no UPDATE ... FROM)."""
    return sa.select(column).where(_jobs.c.id == _outputs.c.job_id).scalar_subquery()


_THIS_OUTPUT = (_outputs.c.job_id == _P("p_job_id"), _outputs.c.name == _P("p_name"))
# The output is running under this attempt: the fence every worker write goes through.
_HELD = (
    *_THIS_OUTPUT,
    _outputs.c.status == "running",
    _outputs.c.attempts == _P("p_attempt"),
)
_HEARTBEAT = sa.update(_outputs).where(*_HELD).values(heartbeat_at=_P("p_now"))
_REQUEUE = (
    sa.update(_outputs)
    .where(*_HELD)
    .values(status="pending", error=_P("p_error"), heartbeat_at=None)
    .returning(_outputs.c.queue)
)
_INSERT_JOB = sa.insert(_jobs)
_INSERT_OUTPUTS = sa.insert(_outputs)
_INSERT_OUTBOX = sa.insert(_outbox)
_CLAIM = (
    sa.update(_outputs)
    .where(
        *_THIS_OUTPUT,
        sa.or_(
            _outputs.c.status == "pending",
            sa.and_(_outputs.c.status == "running", _outputs.c.heartbeat_at < _P("p_stale")),
        ),
    )
    .values(
        status="running",
        attempts=_outputs.c.attempts + 1,
        started_at=_P("p_now"),
        heartbeat_at=_P("p_now"),
    )
    .returning(
        _outputs.c.attempts,
        _outputs.c.steps,
        _of_job(_jobs.c.source).label("source"),
        _of_job(_jobs.c.status).label("job_status"),
    )
)
_HOLDER = sa.select(_outputs.c.status, _outputs.c.heartbeat_at).where(*_THIS_OUTPUT)
_JOB_RUNNING = (
    sa.update(_jobs)
    .where(_jobs.c.id == _P("p_job_id"), _jobs.c.status == "queued")
    .values(status="running", updated_at=_P("p_now"))
)
_SUCCEED = (
    sa.update(_outputs)
    .where(*_HELD)
    .values(
        status="succeeded",
        object_key=_P("p_object_key"),
        format=_P("p_format"),
        content_type=_P("p_content_type"),
        width=_P("p_width"),
        height=_P("p_height"),
        bytes=_P("p_bytes"),
        result=_P("p_result", type_=_outputs.c.result.type),
        error=None,
        finished_at=_P("p_now"),
        heartbeat_at=None,
    )
)
_FAIL = (
    sa.update(_outputs)
    .where(*_HELD)
    .values(status="failed", error=_P("p_error"), finished_at=_P("p_now"), heartbeat_at=None)
)
_COUNT_DOWN = (
    sa.update(_jobs)
    .where(_jobs.c.id == _P("p_job_id"))
    .values(pending_outputs=_jobs.c.pending_outputs - 1, updated_at=_P("p_now"))
    .returning(_jobs.c.pending_outputs, _jobs.c.status, _jobs.c.archive_status, _jobs.c.webhook_url)
)
_OUTPUT_STATES = (
    sa.select(_outputs.c.name, _outputs.c.status)
    .where(_outputs.c.job_id == _P("p_job_id"))
    .order_by(_outputs.c.position)
)
_CLOSE = (
    sa.update(_jobs)
    .where(_jobs.c.id == _P("p_job_id"))
    .values(
        status=_P("p_status"),
        error=_P("p_error"),
        archive_status=_P("p_archive_status"),
        archive_key=_P("p_archive_key"),
        webhook_status=_P("p_webhook_status"),
        updated_at=_P("p_now"),
        finished_at=_P("p_now"),
    )
    .returning(_jobs.c.created_at)
)
_GET = (
    sa.select(JobRow, OutputRow)
    .outerjoin(OutputRow, OutputRow.job_id == JobRow.id)
    .where(JobRow.id == _P("p_job_id"))
    .order_by(OutputRow.position)
)


# FOR KEY SHARE (as a foreign key check takes): it conflicts with the DELETE of cleanup, not
# with the UPDATEs of the earlier job's own workers, nor with other jobs naming the source.
_LOCK_SOURCE_OF = (
    sa.select(_jobs.c.id)
    .where(_jobs.c.id == _P("p_job_id"), _jobs.c.owner == _P("p_owner"))
    .with_for_update(read=True, key_share=True)
)


def _of(job_id: uuid.UUID, owner: str) -> dict[str, Any]:
    return {"p_job_id": job_id, "p_owner": owner}


@dataclass(frozen=True, slots=True)
class _Counted:
    """The job after an output's count-down (its row is locked until the commit)."""

    job_id: uuid.UUID
    pending_outputs: int
    status: str
    archive_status: str | None
    webhook_url: str | None


def _filename_contains(text: str) -> sa.ColumnElement[bool]:
    """The source filename contains ``text``, case-insensitively, wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    filename: sa.ColumnElement[str] = JobRow.source["filename"].as_string()
    return filename.ilike(f"%{escaped}%", escape="\\")


class JobRepository:
    """Jobs and their outputs."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # --- submission ---------------------------------------------------------------------

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
                    and await s.scalar(_LOCK_SOURCE_OF, _of(*source_of)) is None
                ):
                    raise SourceGone(str(source_of[0]))
                await s.execute(_INSERT_JOB, job_values)
                await s.execute(_INSERT_OUTPUTS, outputs)
                await s.execute(
                    _INSERT_OUTBOX,
                    [
                        _outbox_values(
                            out.queue, PROCESS_ACTOR[out.queue], [str(job.id), out.name], job.id
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

    # --- reads --------------------------------------------------------------------------

    async def get(self, job_id: uuid.UUID, owner: str | None = None) -> JobRecord | None:
        """The job and its outputs, in one query (a long-polling client reads twice a job)."""
        async with self.db.reads() as s:
            rows = (await s.execute(_GET, {"p_job_id": job_id})).all()
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
            q = q.where(_filename_contains(name))
        if before is not None:
            q = q.where(sa.tuple_(JobRow.created_at, JobRow.id) < sa.tuple_(*before))
        q = q.order_by(JobRow.created_at.desc(), JobRow.id.desc()).limit(limit)
        async with self.db.reads() as s:
            jobs = list((await s.scalars(q)).all())
            outputs = await self._outputs(s, [j.id for j in jobs])
        return [JobRecord(j, outputs.get(j.id, [])) for j in jobs]

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

    # --- output work (actors) -----------------------------------------------------------

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
            claimed = (await s.execute(_CLAIM, params)).one_or_none()
            if claimed is None:
                holder = (await s.execute(_HOLDER, params)).one_or_none()
                if holder is None or holder.status != "running" or holder.heartbeat_at is None:
                    return None
                stale_at = aware(holder.heartbeat_at) + timedelta(seconds=stale_after)
                return Held(max(0.0, (stale_at - now).total_seconds()))
            if claimed.job_status == "queued":  # the job's first output to start
                await s.execute(_JOB_RUNNING, params)
            source = claimed.source
            return Claim(claimed.attempts, claimed.steps, source["key"], source.get("url"))

    async def heartbeat(self, job_id: uuid.UUID, name: str, attempt: int) -> bool:
        """Touch a running output; False when this attempt no longer owns it."""
        async with self.db.transaction() as s:
            params = {"p_job_id": job_id, "p_name": name, "p_attempt": attempt, "p_now": utcnow()}
            result = await s.execute(_HEARTBEAT, params)
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def succeed_output(
        self, job_id: uuid.UUID, name: str, attempt: int, done: OutputDone
    ) -> Finished:
        """Record success (falsy when this attempt was fenced off: nothing written)."""
        return await self._finish_output(
            job_id,
            name,
            attempt,
            _SUCCEED,
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
        return await self._finish_output(job_id, name, attempt, _FAIL, {"p_error": error})

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
            job_finished(*closed)
            self.db.wake_local()
            self.db.job_finished_local(str(job_id))
        return Finished(recorded=True, last=remaining == 0, closed=closed is not None)

    async def _count_down(
        self, s: AsyncSession, job_id: uuid.UUID, now: datetime, *, enqueue_finalize: bool
    ) -> _Counted:
        """Fan-in: an atomic decrement of the job's pending count; returns the job after it.

        The worker whose output brings it to zero finalizes the job at once, in process
        (a finalize message would queue behind every other pending output). Should that
        worker die first, the reconciler finds the job (all outputs terminal, not finished)
        and enqueues finalize. Other callers enqueue finalize through the outbox here.
        """
        row = (await s.execute(_COUNT_DOWN, {"p_job_id": job_id, "p_now": now})).one()
        job = _Counted(job_id, row.pending_outputs, row.status, row.archive_status, row.webhook_url)
        if job.pending_outputs == 0 and enqueue_finalize:
            s.add(_outbox_row("standard", FINALIZE_ACTOR, [str(job_id)], job_id))
        return job

    async def retry_output_later(
        self, job_id: uuid.UUID, name: str, attempt: int, error: str, delay: float
    ) -> bool:
        """Give a transiently failed output back to the queue after ``delay`` seconds."""
        async with self.db.transaction() as s:
            params = {"p_job_id": job_id, "p_name": name, "p_attempt": attempt, "p_error": error}
            row = (await s.execute(_REQUEUE, params)).scalar_one_or_none()
            if row is None:
                return False
            s.add(_outbox_row(row, PROCESS_ACTOR[row], [str(job_id), name], job_id, delay))
        self.db.wake_local()
        return True

    # --- finalize -----------------------------------------------------------------------

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
        job_finished(*closed)  # counted once committed
        self.db.wake_local()
        self.db.job_finished_local(str(job_id))
        return closed[0]

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
        outputs = (await s.execute(_OUTPUT_STATES, {"p_job_id": job_id})).all()
        status = final_status(o.status for o in outputs)
        failed = [o.name for o in outputs if o.status == "failed"]
        now = utcnow()
        created = await s.scalar(
            _CLOSE,
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
            s.add(_webhook_message(job_id))
        return status, created or now, now

    # --- maintenance --------------------------------------------------------------------

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
                    s.add(
                        _outbox_row(
                            row.queue,
                            PROCESS_ACTOR[row.queue],
                            [str(row.job_id), row.name],
                            row.job_id,
                        )
                    )
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
                s.add(_outbox_row(queue, PROCESS_ACTOR[queue], [str(job_id), name], job_id))
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
                            OutboxRow.actor == FINALIZE_ACTOR,
                            OutboxRow.sent_at.is_(None),
                        )
                    )
                    .limit(500)
                )
            ).all()
            for job_id in ids:
                s.add(_outbox_row("standard", FINALIZE_ACTOR, [str(job_id)], job_id))
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
                s.add(_webhook_message(job_id))
        if ids:
            self.db.wake_local()
        return {
            "running_requeued": requeued + failed,
            "pending_republished": republished,
            "finalized": finalized,
            "webhooks_resent": len(ids),
        }

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
                sa.update(_outputs)
                .where(_outputs.c.job_id == job_id, _outputs.c.status.in_(("pending", "running")))
                .values(status="canceled", error="canceled", finished_at=now, heartbeat_at=None)
            )
            # Outbox messages not yet published for this job's outputs need not go out.
            await s.execute(
                sa.delete(_outbox).where(
                    _outbox.c.job_id == job_id,
                    _outbox.c.sent_at.is_(None),
                    _outbox.c.actor.in_(tuple(PROCESS_ACTOR.values())),
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
                s.add(_webhook_message(job_id))
            created = job.created_at
        job_finished("canceled", created, now)  # counted once committed
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
                s.add(_outbox_row(o.queue, PROCESS_ACTOR[o.queue], [str(job_id), o.name], job_id))
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

    async def set_source_facts(self, job_id: uuid.UUID, facts: dict[str, Any]) -> None:
        """Fill in a URL source's facts once the worker has fetched it."""
        async with self.db.transaction() as s:
            job = await s.get(JobRow, job_id, with_for_update=True)
            if job is not None and job.source.get("width") is None:
                job.source = {**job.source, **facts}

    async def source_in_use(self, key: str) -> bool:
        """Does any job still render from the object ``key`` (before removing it)?"""
        async with self.db.reads() as s:
            found = await s.scalar(sa.select(JobRow.id).where(JobRow.source_key == key).limit(1))
        return found is not None
