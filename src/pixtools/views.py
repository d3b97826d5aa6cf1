"""The job as the outside sees it (docs/api.md, "The job"): API responses and webhook bodies."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime
from typing import Any

import msgspec

from pixtools.store.jobs import JobRecord
from pixtools.store.models import OutputRow


class SourceOut(msgspec.Struct, omit_defaults=True):
    """The job's source: its file name, what the header says and, for a URL, where from."""

    filename: str
    # None only for a URL source the worker has not fetched yet.
    format: str | None
    content_type: str | None
    bytes: int | None
    width: int | None
    height: int | None
    url: str | None = None  # a URL source: where it is fetched from


class OutputOut(msgspec.Struct):
    """One named output: its state, format, size, download URL and result."""

    name: str
    status: str
    queue: str
    format: str | None
    content_type: str | None
    width: int | None
    height: int | None
    bytes: int | None
    url: str | None
    attempts: int
    error: str | None
    result: dict[str, Any] | None
    # For clients that draw progress: a small WebP of an image output, and when a running
    # output's worker last showed it was alive (stale past the server's stale window).
    preview_url: str | None = None
    started_at: datetime | None = None
    heartbeat_at: datetime | None = None
    finished_at: datetime | None = None


class ArchiveOut(msgspec.Struct):
    """The job's zip of all outputs: its state and, once built, its download URL."""

    status: str
    url: str | None


class WebhookOut(msgspec.Struct):
    """The job's webhook: where it goes, its delivery state and attempts so far."""

    url: str
    status: str
    attempts: int


class JobOut(msgspec.Struct):
    """A job as the API returns it and a webhook body carries it."""

    id: str
    status: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    source: SourceOut
    spec: dict[str, Any]
    outputs: list[OutputOut]
    metadata: dict[str, Any] | None
    archive: ArchiveOut | None
    webhook: WebhookOut | None
    error: str | None


class JobPage(msgspec.Struct):
    """One page of the job list and the cursor of the next, if any."""

    items: list[JobOut]
    next_cursor: str | None


def _output(job_id: str, o: OutputRow) -> OutputOut:
    ready = o.status == "succeeded" and o.object_key is not None
    return OutputOut(
        name=o.name,
        status=o.status,
        queue=o.queue,
        format=o.format,
        content_type=o.content_type,
        width=o.width,
        height=o.height,
        bytes=o.bytes,
        url=f"/api/v1/jobs/{job_id}/outputs/{o.name}" if ready else None,
        attempts=o.attempts,
        error=o.error,
        result=o.result,
        preview_url=f"/api/v1/jobs/{job_id}/outputs/{o.name}/preview" if ready else None,
        started_at=o.started_at,
        heartbeat_at=o.heartbeat_at,
        finished_at=o.finished_at,
    )


def job_out(record: JobRecord) -> JobOut:
    """The outside view of a job record (docs/api.md, "The job")."""
    j = record.job
    jid = str(j.id)
    src = j.source
    archive = None
    if j.archive_status is not None:
        archive = ArchiveOut(
            status=j.archive_status,
            url=f"/api/v1/jobs/{jid}/archive" if j.archive_status == "succeeded" else None,
        )
    webhook = None
    if j.webhook_url:
        webhook = WebhookOut(
            url=j.webhook_url, status=j.webhook_status or "pending", attempts=j.webhook_attempts
        )
    return JobOut(
        id=jid,
        status=j.status,
        created_at=j.created_at,
        updated_at=j.updated_at,
        finished_at=j.finished_at,
        source=SourceOut(
            filename=src["filename"],
            format=src["format"],
            content_type=src["content_type"],
            bytes=src["bytes"],
            width=src["width"],
            height=src["height"],
            url=src.get("url"),
        ),
        spec=j.spec,
        outputs=[_output(jid, o) for o in record.outputs],
        metadata=j.metadata_,
        archive=archive,
        webhook=webhook,
        error=j.error,
    )


def encode_cursor(created_at: datetime, job_id: uuid.UUID) -> str:
    """The opaque list cursor for the position ``(created_at, job_id)`` in newest-first order."""
    raw = f"{created_at.isoformat()}|{job_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """Raises ValueError on anything that is not a cursor we made."""
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    at, _, jid = raw.partition("|")
    return datetime.fromisoformat(at), uuid.UUID(jid)
