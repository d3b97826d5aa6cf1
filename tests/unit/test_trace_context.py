"""The trace context travels as a message option; a middleware opens the consumer span."""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.brokers.stub import StubBroker
from opentelemetry import trace

from pixtools.messaging.broker import build_broker
from pixtools.messaging.middleware import TRACEPARENT

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"


def test_the_span_continues_the_option_and_a_legacy_kwarg_is_taken_out() -> None:
    broker = build_broker("")
    assert isinstance(broker, StubBroker)  # no RabbitMQ URL: the in-process broker
    seen: list[tuple[str, dict[str, Any]]] = []

    async def traced(job_id: str) -> None:
        trace_id = format(trace.get_current_span().get_span_context().trace_id, "032x")
        seen.append((trace_id, {"job_id": job_id}))

    actor = dramatiq.actor(actor_name="traced", queue_name="q", broker=broker)(traced)
    worker = dramatiq.Worker(broker, worker_threads=1)
    worker.start()
    try:
        for kwargs, options in (({}, {TRACEPARENT: PARENT}), ({TRACEPARENT: PARENT}, {})):
            broker.enqueue(
                dramatiq.Message(
                    queue_name="q",
                    actor_name=actor.actor_name,
                    args=("j1",),
                    kwargs=kwargs,
                    options=options,
                )
            )
        broker.join("q", fail_fast=True)
        worker.join()
    finally:
        worker.stop()
        broker.close()
    assert seen == [(TRACE_ID, {"job_id": "j1"})] * 2
