"""Submitting a job: one use case, whatever carries the source (``pixtools.jobs.sources``).

The spec is checked first (allowed on this server), then the source as far as it can be
before an ``Idempotency-Key`` is looked up, then the source is placed (stored, or resolved
from its reference) and one transaction creates the job.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any, Protocol

from pixtools.jobs.errors import JobError, Problem, conflict, field_error, spec_refused
from pixtools.jobspec.job import JobSpec, SpecError, parse_spec, spec_to_builtins
from pixtools.jobspec.ops import op_of
from pixtools.jobspec.queues import ML
from pixtools.services import Services
from pixtools.settings import Settings
from pixtools.store.jobs import (
    IdempotencyClaim,
    IdempotencyConflict,
    JobRecord,
    NewJob,
    NewOutput,
)
from pixtools.webhooks.guard import UnsafeWebhookUrl, resolve_public


@dataclass(frozen=True, slots=True)
class Placed:
    """A source ready for its job: the job's id and the source's facts as stored."""

    job_id: uuid.UUID
    facts: dict[str, Any]
    metadata: dict[str, Any] | None = None
    #: (job, owner) whose source object the new job shares.
    source_of: tuple[uuid.UUID, str] | None = None
    #: An object stored for this job alone: removed if the job does not land.
    stored_key: str | None = None


class Source(Protocol):
    """How a submission supplies its source."""

    async def check(self, services: Services, spec: JobSpec) -> None:
        """Refuse what can be refused before an idempotency key is looked up."""

    def request_hash(self, spec_data: dict[str, Any]) -> str:
        """What makes two submissions under one ``Idempotency-Key`` the same request."""

    async def place(self, services: Services, owner: str, spec: JobSpec) -> Placed:
        """Store or resolve the source for a new job."""

    def refused(self, exc: BaseException, placed: Placed) -> JobError | None:
        """The refusal a failed job insert means for this source, if it is one."""


@dataclass(frozen=True, slots=True)
class Submitted:
    """A submission's outcome: the job, and whether it is an earlier one replayed."""

    record: JobRecord
    #: The job of an earlier submission under the same ``Idempotency-Key``.
    replayed: bool = False


def _refuse_ml_steps(spec: JobSpec) -> None:
    for i, out in enumerate(spec.outputs):
        for j, step in enumerate(out.steps):
            if op_of(step).queue == ML:
                raise field_error(
                    f"outputs[{i}].steps[{j}].op",
                    "ML ops need the ml extra, which this embedded server lacks "
                    "(pip install -e '.[ml]' && scripts/install-ml.sh .venv)",
                )


async def checked_spec(raw: str | bytes, settings: Settings, *, ml_steps: bool) -> JobSpec:
    """The spec parsed and allowed on this server (ML steps when it can run them, webhooks
    configured and their destination public)."""
    try:
        spec = parse_spec(raw)
    except SpecError as exc:
        raise spec_refused(exc) from None
    if not ml_steps:
        _refuse_ml_steps(spec)
    if spec.webhook_url is not None and not settings.webhook_secret:
        raise field_error(
            "webhook_url", "webhooks are disabled: this server has no PIXTOOLS_WEBHOOK_SECRET"
        )
    if spec.webhook_url is not None and not settings.webhook_allow_private:
        try:
            await resolve_public(spec.webhook_url)
        except UnsafeWebhookUrl as exc:
            raise field_error("webhook_url", str(exc)) from None
    return spec


def job_of(
    job_id: uuid.UUID,
    owner: str,
    spec: JobSpec,
    spec_data: dict[str, Any],
    source: dict[str, Any],
) -> NewJob:
    """The job to insert: ``spec_data`` is ``spec`` as stored (defaults filled in)."""
    return NewJob(
        id=job_id,
        owner=owner,
        spec=spec_data,
        source=source,
        webhook_url=spec.webhook_url,
        archive=bool(spec.archive),
        outputs=[
            NewOutput(o.name, i, o.queue, spec_data["outputs"][i]["steps"])
            for i, o in enumerate(spec.outputs)
        ],
    )


async def submit(  # noqa: PLR0913  the submission's four parts, then two options by keyword
    services: Services,
    owner: str,
    raw_spec: str | bytes,
    source: Source,
    *,
    idempotency_key: str | None = None,
    ml_steps: bool = True,
) -> Submitted:
    """Create ``owner``'s job on ``source`` (or, under a used ``idempotency_key``, find the
    job of the same request made before)."""
    spec = await checked_spec(raw_spec, services.settings, ml_steps=ml_steps)
    await source.check(services, spec)
    spec_data = spec_to_builtins(spec)
    claim = None
    if idempotency_key is not None:
        claim = IdempotencyClaim(owner, idempotency_key, source.request_hash(spec_data))
        found = await services.jobs.find_idempotent(owner, idempotency_key)
        if found is not None:
            return await _replay(services, owner, found[1], same=found[0] == claim.request_hash)
    placed = await source.place(services, owner, spec)
    new_job = job_of(placed.job_id, owner, spec, spec_data, placed.facts)
    try:
        record = await services.jobs.create(
            new_job, claim, metadata=placed.metadata, source_of=placed.source_of
        )
    except IdempotencyConflict as exc:
        if placed.stored_key is not None:
            await services.objects.delete(placed.stored_key)
        return await _replay(services, owner, exc.job_id, same=exc.same_request)
    except BaseException as exc:
        if placed.stored_key is not None:  # nothing half created
            await asyncio.shield(services.objects.delete(placed.stored_key))
        refusal = source.refused(exc, placed)
        if refusal is None:
            raise
        raise refusal from None
    return Submitted(record)


async def _replay(services: Services, owner: str, job_id: uuid.UUID, *, same: bool) -> Submitted:
    if not same:
        raise field_error(
            "Idempotency-Key",
            "already used for a different request",
            Problem.CONFLICT,
            job_id=str(job_id),
        )
    record = await services.jobs.get(job_id, owner)
    if record is None:  # removed by cleanup since
        raise conflict("Idempotency-Key: the job it named no longer exists")
    return Submitted(record, replayed=True)
