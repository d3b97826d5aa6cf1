"""What the job repository takes and returns: plain records, no SQL."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from pixtools.store.models import JobRow, OutputRow
from pixtools.store.previews import output_preview_key, source_preview_key


@dataclass(frozen=True, slots=True)
class NewOutput:
    """An output to insert with its job: its place in the spec, its queue and its steps."""

    name: str
    position: int
    queue: str
    steps: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class NewJob:
    """A job as submission inserts it, its outputs included."""

    id: uuid.UUID
    owner: str
    spec: dict[str, Any]
    source: dict[str, Any]
    webhook_url: str | None
    archive: bool
    outputs: list[NewOutput]


@dataclass(frozen=True, slots=True)
class IdempotencyClaim:
    """An ``Idempotency-Key`` taken with the job; the hash tells a replay from another request."""

    owner: str
    key: str
    request_hash: str


@dataclass(slots=True)
class JobRecord:
    """A job row and its outputs, as the repository hands them out."""

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
