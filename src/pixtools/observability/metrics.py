"""Prometheus metrics of the API process (one registry per app, so tests stay isolated)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class ApiMetrics:
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
        return generate_latest(self.registry)
