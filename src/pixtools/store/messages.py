"""Outbox rows: the messages a transaction announces, addressed by names the store is given.

The store owns no actor names and reads no trace: whoever builds the repositories hands
them a ``Routes`` (messaging's names, the current trace context).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pixtools.jobspec.queues import STANDARD
from pixtools.store.models import OutboxRow
from pixtools.store.types import utcnow


def _no_trace() -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class Routes:
    """The actor each message is for and the trace context it carries."""

    process: Mapping[str, str]  # queue -> the actor rendering an output on it
    finalize: str
    webhook: str
    trace_context: Callable[[], str | None] = _no_trace

    def values(
        self, queue: str, actor: str, args: list[Any], job_id: uuid.UUID | None, delay: float = 0.0
    ) -> dict[str, Any]:
        """An outbox row's column values, due after ``delay`` seconds."""
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
            "trace_context": self.trace_context(),
        }

    def render(self, queue: str, job_id: uuid.UUID, name: str, delay: float = 0.0) -> OutboxRow:
        """Render output ``name`` of the job (on ``queue``)."""
        return OutboxRow(
            **self.values(queue, self.process[queue], [str(job_id), name], job_id, delay)
        )

    def finalize_job(self, job_id: uuid.UUID) -> OutboxRow:
        """Finalize the job (archive, close) on the standard queue."""
        return OutboxRow(**self.values(STANDARD, self.finalize, [str(job_id)], job_id))

    def webhook_delivery(
        self, job_id: uuid.UUID, delivery_id: uuid.UUID | None = None, delay: float = 0.0
    ) -> OutboxRow:
        """A delivery of the job's webhook: a new one (its own delivery id, kept across its
        retries) unless ``delivery_id`` is given (a retry)."""
        delivery = delivery_id or uuid.uuid4()
        args = [str(job_id), str(delivery)]
        return OutboxRow(**self.values(STANDARD, self.webhook, args, job_id, delay))
