"""The worker middleware on a real RabbitMQ broker: outcomes, in-flight and consumer gauges."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import dramatiq
import pytest
from dramatiq.brokers.rabbitmq import RabbitmqBroker
from prometheus_client import REGISTRY

from tests.support.processes import wait_for
from tests.support.servers import RABBIT_HOST, rabbitmqctl

pytestmark = pytest.mark.services


def sample(name: str, **labels: str) -> float:
    value = REGISTRY.get_sample_value(name, labels)
    return 0.0 if value is None else value


@pytest.fixture
def broker() -> Iterator[RabbitmqBroker]:
    from pixtools.messaging.broker import build_broker

    vhost = f"pixtools_metrics_{secrets.token_hex(3)}"
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    broker = build_broker(f"amqp://guest:guest@{RABBIT_HOST}/{vhost}")
    assert isinstance(broker, RabbitmqBroker)
    try:
        yield broker
    finally:
        broker.close()
        rabbitmqctl("delete_vhost", vhost)


def test_outcomes_in_flight_and_consumers_are_counted(broker: RabbitmqBroker) -> None:
    from pixtools.worker.metrics import install

    install(broker)
    queue = "probe"
    calls: list[str] = []

    def ok(x: int) -> None:
        calls.append("ok")

    def boom(x: int) -> None:
        calls.append("boom")
        raise RuntimeError("infrastructure down")

    options: dict[str, Any] = {"queue_name": queue, "broker": broker}
    good = dramatiq.actor(actor_name="probe_ok", **options)(ok)
    # One retry, then Retries gives up and RabbitMQ dead-letters the message.
    bad = dramatiq.actor(
        actor_name="probe_boom", max_retries=1, min_backoff=10, max_backoff=20, **options
    )(boom)
    base = {
        o: sample("pixtools_worker_messages_total", queue=queue, actor="probe_boom", outcome=o)
        for o in ("retried", "dead_lettered")
    }
    worker = dramatiq.Worker(broker, worker_threads=3, queues={queue})
    worker.start()
    try:
        assert sample("pixtools_worker_consumers", queue=queue) == 3
        good.send(1)
        good.send(2)
        bad.send(3)
        wait_for(
            lambda: (
                sample(
                    "pixtools_worker_messages_total",
                    queue=queue,
                    actor="probe_boom",
                    outcome="dead_lettered",
                )
                > base["dead_lettered"]
            ),
            30,
            "the failing message dead-lettered",
        )
        wait_for(lambda: calls.count("ok") == 2, 30, "the good messages")
    finally:
        worker.stop()
    assert sample("pixtools_worker_consumers", queue=queue) == 0  # no worker left
    assert calls.count("boom") == 2
    labels = {"queue": queue, "actor": "probe_boom"}
    assert (
        sample("pixtools_worker_messages_total", outcome="retried", **labels) == base["retried"] + 1
    )
    assert (
        sample("pixtools_worker_messages_total", outcome="dead_lettered", **labels)
        == base["dead_lettered"] + 1
    )
    assert (
        sample("pixtools_worker_messages_total", queue=queue, actor="probe_ok", outcome="succeeded")
        == 2
    )
    assert sample("pixtools_worker_message_seconds_count", queue=queue, actor="probe_ok") == 2
    assert sample("pixtools_worker_messages_in_flight", queue=queue, actor="probe_ok") == 0
