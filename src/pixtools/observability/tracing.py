"""OpenTelemetry tracing: one set-up for every process, context carried through the queue.

Configured by the standard variables: ``OTEL_SERVICE_NAME`` (default: the process's role),
``OTEL_TRACES_EXPORTER`` = ``console`` (spans as JSON on stdout), ``otlp`` (needs
``opentelemetry-exporter-otlp-proto-http``; endpoint from ``OTEL_EXPORTER_OTLP_ENDPOINT``)
or ``none`` (the default: spans are still made, so log lines carry trace ids).

A submission's trace context is stored with its outbox rows and travels in the Dramatiq
message (option ``traceparent``); the workers continue the trace, so one trace shows a
job from the HTTP request to each output's processing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

log = logging.getLogger(__name__)
TRACER_NAME = "pixtools"
_configured = False


def _exporter(name: str) -> SpanExporter | None:
    if name in ("", "none"):
        return None
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # type: ignore[import-not-found]
                OTLPSpanExporter,
            )
        except ImportError:
            log.warning("OTEL_TRACES_EXPORTER=otlp needs opentelemetry-exporter-otlp-proto-http")
            return None
        exporter: SpanExporter = OTLPSpanExporter()
        return exporter
    log.warning("unknown OTEL_TRACES_EXPORTER %r; traces are not exported", name)
    return None


def configure_tracing(default_service: str) -> None:
    """Install the tracer provider once per process."""
    global _configured
    if _configured:
        return
    service = os.environ.get("OTEL_SERVICE_NAME") or default_service
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    exporter = _exporter(os.environ.get("OTEL_TRACES_EXPORTER", "none").strip().lower())
    if exporter is not None:
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _configured = True


def tracer() -> trace.Tracer:
    """PixTools' tracer, from whichever provider is installed."""
    return trace.get_tracer(TRACER_NAME)


def current_traceparent() -> str | None:
    """The W3C ``traceparent`` of the current span, to carry across the queue."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return carrier.get("traceparent")


@contextmanager
def continued(traceparent: str | None, name: str, **attributes: Any) -> Iterator[trace.Span]:
    """A consumer span continuing the trace of ``traceparent`` (without one: a child of the
    current span, or a new trace)."""
    token = context.attach(propagate.extract({"traceparent": traceparent})) if traceparent else None
    try:
        with tracer().start_as_current_span(
            name, kind=trace.SpanKind.CONSUMER, attributes=attributes
        ) as span:
            yield span
    finally:
        if token is not None:
            context.detach(token)


def log_trace_fields() -> dict[str, str]:
    """trace_id/span_id of the current span for log lines (empty when there is none)."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return {}
    return {"trace_id": format(ctx.trace_id, "032x"), "span_id": format(ctx.span_id, "016x")}
