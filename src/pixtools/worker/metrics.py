"""Prometheus metrics of the Dramatiq workers: a middleware and its exposition server.

``pixtools worker`` runs Dramatiq with several processes of several threads each. Their
series must add up, so they use prometheus-client's multiprocess mode: ``pixtools worker``
points ``PROMETHEUS_MULTIPROC_DIR`` at an empty folder of its own before Dramatiq starts
(so every process imports prometheus-client with it set), each worker process writes its
series to files there, and one extra process (a Dramatiq *fork*, started once per worker
pool) serves their merge on ``PIXTOOLS_WORKER_METRICS_PORT``.

Why not Dramatiq's own ``Prometheus`` middleware: it shares one folder
(``/tmp/dramatiq-prometheus``) and one port (9191) between every Dramatiq on a host, so
two pools on one machine (the standard and ML workers here, in tests, in the e2e stack)
overwrite each other; it has no per-queue worker gauge, and it cannot tell a retry from a
dead letter. This one keeps its folder per pool, its port in our settings, and its series
under our names with bounded labels (queue and actor come from the declared actors).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import dramatiq
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
ENV_PORT = "PIXTOOLS_WORKER_METRICS_PORT"
OUTCOMES = ("succeeded", "retried", "dead_lettered", "skipped")

MESSAGES = Counter(
    "pixtools_worker_messages_total",
    "Messages the workers finished, by queue, actor and outcome "
    "(succeeded, retried, dead_lettered, skipped)",
    ["queue", "actor", "outcome"],
)
MESSAGE_SECONDS = Histogram(
    "pixtools_worker_message_seconds",
    "Time a worker spent on one message, by queue and actor",
    ["queue", "actor"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
)
IN_FLIGHT = Gauge(
    "pixtools_worker_messages_in_flight",
    "Messages being processed now, by queue and actor",
    ["queue", "actor"],
    multiprocess_mode="livesum",
)
CONSUMERS = Gauge(
    "pixtools_worker_consumers",
    "Worker threads consuming each queue (alive processes only); 0 or absent: no worker",
    ["queue"],
    multiprocess_mode="livesum",
)


def prepare_multiprocess_dir(environ: dict[str, str] | os._Environ[str]) -> str:
    """Make ``PROMETHEUS_MULTIPROC_DIR`` an empty folder for this worker pool; return it.

    Called by ``pixtools worker`` before it execs Dramatiq. A given folder (a pod's emptyDir
    survives container restarts) is emptied: files of a previous run's processes would add
    their old counts to the new ones."""
    given = environ.get(ENV_DIR, "")
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for entry in path.glob("*.db"):
            entry.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="pixtools-metrics-"))
    environ[ENV_DIR] = str(path)
    return str(path)


def serve_metrics() -> int:
    """The Dramatiq fork: serve the merged series of this pool's worker processes."""
    from prometheus_client import multiprocess

    port = int(os.environ.get(ENV_PORT, "0"))
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    server, _ = start_http_server(port, addr="0.0.0.0", registry=registry)  # noqa: S104
    log.info("worker metrics on :%d/metrics", server.server_port)
    threading.Event().wait()  # until Dramatiq's SIGTERM ends this process
    return 0


class WorkerMetrics(dramatiq.Middleware):
    """Counts, times and gauges every message; the per-queue consumer gauge says who is alive.

    Its after-hooks must run after ``Retries`` (which decides retry or dead letter):
    Dramatiq runs after-hooks in reverse order, so it is added before the built-in ones.
    """

    def __init__(self, *, serve: bool) -> None:
        self.serve = serve
        self._started: dict[str, float] = {}
        self._lock = threading.Lock()

    @property
    def forks(self) -> list[Any]:
        """The metrics server process, when this worker serves its metrics."""
        return [serve_metrics] if self.serve else []

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Set the consumer gauges and export every consumed series at 0."""
        queues = worker.consumer_whitelist or broker.get_declared_queues()
        for queue in sorted(queues):
            if not queue.endswith((".DQ", ".XQ")):
                CONSUMERS.labels(queue).set(worker.worker_threads)
        # Export every (queue, actor) this process consumes at 0 from the start (see
        # pixtools.observability.metrics on why).
        for name in broker.get_declared_actors():
            actor = broker.get_actor(name)
            if actor.queue_name in queues:
                for outcome in OUTCOMES:
                    MESSAGES.labels(actor.queue_name, name, outcome)
                MESSAGE_SECONDS.labels(actor.queue_name, name)
                IN_FLIGHT.labels(actor.queue_name, name)

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Zero this process's consumer gauges."""
        for queue in broker.get_declared_queues():
            CONSUMERS.labels(queue).set(0)

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        """Mark this process dead for the multiprocess collector."""
        if os.environ.get(ENV_DIR):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def before_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
    ) -> None:
        """Note the start and count the message in flight."""
        with self._lock:
            self._started[message.message_id] = time.perf_counter()
        IN_FLIGHT.labels(message.queue_name, message.actor_name).inc()

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: dramatiq.MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Count the message by outcome and time it."""
        self._finish(message, _outcome(message, exception))

    def after_skip_message(self, broker: dramatiq.Broker, message: dramatiq.MessageProxy) -> None:
        """Count a skipped (or expired and dead-lettered) message."""
        # AgeLimit skips expired messages before they run: they are dead-lettered too.
        self._finish(message, "dead_lettered" if message.failed else "skipped")

    def _finish(self, message: dramatiq.MessageProxy, outcome: str) -> None:
        queue, actor = message.queue_name, message.actor_name
        with self._lock:
            started = self._started.pop(message.message_id, None)
        if started is not None:
            IN_FLIGHT.labels(queue, actor).dec()
            MESSAGE_SECONDS.labels(queue, actor).observe(time.perf_counter() - started)
        MESSAGES.labels(queue, actor, outcome).inc()


def _outcome(message: dramatiq.MessageProxy, exception: BaseException | None) -> str:
    if exception is None:
        return "succeeded"
    # Retries marks the message failed when it gives up: RabbitMQ then dead-letters it.
    return "dead_lettered" if message.failed else "retried"


def install(broker: dramatiq.Broker) -> WorkerMetrics:
    """Add the metrics middleware to ``broker`` (first, so its after-hooks run last) and
    serve them when ``pixtools worker`` prepared a folder and a port."""
    serve = bool(os.environ.get(ENV_DIR)) and int(os.environ.get(ENV_PORT, "0") or 0) > 0
    middleware = WorkerMetrics(serve=serve)
    broker.add_middleware(middleware, before=type(broker.middleware[0]))
    return middleware
