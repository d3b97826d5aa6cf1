"""Prometheus metrics.

Two kinds live here:

* ``ApiMetrics``: the API process's own series, one registry per app (tests stay isolated).
* Work metrics (jobs finished, per-op time, webhook deliveries): module-level series in the
  default registry, updated wherever the work happens. In a worker started by
  ``pixtools worker`` the environment has ``PROMETHEUS_MULTIPROC_DIR`` set before anything
  imports prometheus_client, so these are written to per-process files that the worker's
  exposition server merges (see ``pixtools.worker.metrics``); in the API process (embedded
  mode) they are plain in-memory series that ``ApiMetrics.render`` includes.

Every label set is bounded: statuses, outcomes, op names, queue and actor names come from
fixed lists in the code, never from a request.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

if TYPE_CHECKING:
    from pixtools.store.database import Database

# Seconds from submit to terminal state. Phone photos take one to a few seconds through the
# pipeline on two cores; ML jobs and backlogs take minutes.
JOB_LATENCY_BUCKETS = (0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
OP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

JOBS_FINISHED = Counter(
    "pixtools_jobs_finished_total",
    "Jobs that reached a terminal status, by status",
    ["status"],
)
JOB_LATENCY = Histogram(
    "pixtools_job_duration_seconds",
    "Seconds from submit (accepted) to the terminal status, by status",
    ["status"],
    buckets=JOB_LATENCY_BUCKETS,
)
OP_SECONDS = Histogram(
    "pixtools_op_seconds",
    "Time of one image operation on one output (decode and encode included as ops)",
    ["op"],
    buckets=OP_BUCKETS,
)
WEBHOOK_DELIVERIES = Counter(
    "pixtools_webhook_deliveries_total",
    "Webhook delivery attempts by outcome (delivered, retry, failed, circuit_open)",
    ["outcome"],
)
WEBHOOK_SECONDS = Histogram(
    "pixtools_webhook_delivery_seconds",
    "Duration of one webhook delivery attempt (resolution, connect, response)",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
WEBHOOK_BREAKER = Counter(
    "pixtools_webhook_breaker_transitions_total",
    "Circuit-breaker transitions of webhook destinations (to: open, closed)",
    ["to"],
)

# Every label value known up front is exported from the start, at 0: a counter that first
# appears at 1 has no increase in rate() until its second change, and an alert on a ratio
# needs both sides present.
JOB_STATUSES = ("succeeded", "partial", "failed")
WEBHOOK_OUTCOMES = ("delivered", "retry", "failed", "circuit_open")
for _status in JOB_STATUSES:
    JOBS_FINISHED.labels(_status)
    JOB_LATENCY.labels(_status)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOK_DELIVERIES.labels(_outcome)
for _to in ("open", "closed"):
    WEBHOOK_BREAKER.labels(_to)


def job_finished(status: str, created_at: datetime, finished_at: datetime) -> None:
    """Count a job's terminal status and observe its submit-to-done time."""
    JOBS_FINISHED.labels(status).inc()
    JOB_LATENCY.labels(status).observe(max(0.0, (finished_at - created_at).total_seconds()))


class ApiMetrics:
    """The API process's own registry: HTTP traffic, submissions, outbox and Pillow build."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "pixtools_http_requests_total",
            "HTTP requests by route and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pixtools_http_request_seconds",
            "HTTP request latency by route",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.jobs_submitted = Counter(
            "pixtools_jobs_submitted_total", "Jobs accepted", registry=self.registry
        )
        self.outbox_pending = Gauge(
            "pixtools_outbox_pending", "Outbox rows not yet published", registry=self.registry
        )
        self.outbox_oldest_age = Gauge(
            "pixtools_outbox_oldest_age_seconds",
            "Age of the oldest outbox row that is due and not yet published (0: none)",
            registry=self.registry,
        )
        self.outbox_published = Gauge(
            "pixtools_outbox_published",
            "Rows this process's relay published",
            registry=self.registry,
        )
        self.pillow_build = Gauge(
            "pixtools_pillow_build_info",
            "The Pillow build in use (1 for the active one)",
            ["version", "simd"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        """The exposition text of this registry, then of the default one (the process's CPU
        and memory and, in embedded mode, the work metrics of the in-process workers)."""
        return generate_latest(self.registry) + generate_latest(REGISTRY)

    async def refresh_outbox(self, db: Database) -> None:
        """Outbox backlog and the age of its oldest due row, read at scrape time (one query).

        Every API replica reports the same figures; the rules take ``max``."""
        import sqlalchemy as sa

        from pixtools.store.models import OutboxRow

        async with db.reads() as s:
            count, earliest = (
                await s.execute(
                    sa.select(sa.func.count(), sa.func.min(OutboxRow.available_at)).where(
                        OutboxRow.sent_at.is_(None)
                    )
                )
            ).one()
        self.outbox_pending.set(count or 0)
        age = 0.0
        if earliest is not None:
            age = max(0.0, (datetime.now(UTC) - earliest).total_seconds())
        self.outbox_oldest_age.set(age)
