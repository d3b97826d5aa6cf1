"""Webhook delivery state: every attempt persisted, the job's webhook status kept current."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import sqlalchemy as sa

from pixtools.store.database import Database
from pixtools.store.messages import Routes
from pixtools.store.models import JobRow, WebhookAttemptRow
from pixtools.store.types import utcnow

Outcome = Literal["delivered", "retry", "failed", "circuit_open"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt as the API lists it."""

    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
    delivery_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AttemptResult:
    """What one delivery attempt came to, and for a retry, how long to wait."""

    outcome: Outcome
    status_code: int | None
    error: str | None
    duration_ms: float
    retry_in: float = 0.0


class WebhookRepository:
    """Where webhook delivery records its attempts and the API reads them."""

    def __init__(self, db: Database, routes: Routes) -> None:
        self.db = db
        self.routes = routes

    async def record(self, job_id: uuid.UUID, delivery_id: uuid.UUID, result: AttemptResult) -> int:
        """Persist one attempt and its consequence (a delayed retry through the outbox)."""
        async with self.db.transaction() as s:
            job = await s.get(JobRow, job_id, with_for_update=True)
            if job is None:
                return 0
            job.webhook_attempts += 1
            s.add(
                WebhookAttemptRow(
                    job_id=job_id,
                    delivery_id=delivery_id,
                    attempt=job.webhook_attempts,
                    at=utcnow(),
                    status_code=result.status_code,
                    error=result.error,
                    duration_ms=result.duration_ms,
                )
            )
            job.webhook_status = {"retry": "pending"}.get(result.outcome, result.outcome)
            if result.outcome in ("retry", "circuit_open"):
                s.add(self.routes.webhook_delivery(job_id, delivery_id, result.retry_in))
            return job.webhook_attempts

    async def attempts(self, job_id: uuid.UUID) -> list[Attempt]:
        """The job's delivery attempts, in order."""
        async with self.db.reads() as s:
            rows = await s.scalars(
                sa.select(WebhookAttemptRow)
                .where(WebhookAttemptRow.job_id == job_id)
                .order_by(WebhookAttemptRow.attempt)
            )
            return [
                Attempt(
                    r.attempt,
                    r.at,
                    r.status_code,
                    r.error,
                    r.duration_ms,
                    str(r.delivery_id),
                )
                for r in rows
            ]
