"""Entry module for the Dramatiq CLI (``pixtools worker`` runs ``dramatiq pixtools.worker.main``).

Importing it builds the RabbitMQ broker from the settings and declares the actors: this
module is a process entry point, the one place where import reads configuration. The queues
this process consumes come in the settings too (``PIXTOOLS_WORKER_QUEUES``, which
``pixtools worker --queues`` sets for the processes Dramatiq starts).
"""

from __future__ import annotations

import os

from pixtools.maintenance.periodic import PeriodicReconciler
from pixtools.messaging.actors import declare_actors
from pixtools.messaging.broker import build_broker
from pixtools.messaging.brokerlog import install_consumer_log_filter
from pixtools.messaging.names import ML
from pixtools.observability.logs import configure_logging
from pixtools.observability.tracing import configure_tracing
from pixtools.settings import Settings
from pixtools.worker.metrics import install as install_worker_metrics

settings = Settings.from_env()
configure_logging(settings.log_level, settings.log_format)
# A lost broker: one WARNING line per reconnect attempt of each consumer, not Dramatiq's
# CRITICAL line with pika's repr (the consumers still reconnect by themselves, every 3 s).
install_consumer_log_filter(settings.rabbitmq_url)
configure_tracing("pixtools-worker")
# Image work is batch work: on a shared host the API's requests go first. (In the
# cluster, CPU requests/limits of separate pods decide; niceness only orders processes
# that share a cgroup.)
os.setpriority(os.PRIO_PROCESS, 0, settings.worker_nice)
broker = build_broker(settings.rabbitmq_url, settings.redis_url)
install_worker_metrics(broker)
# The workers run the reconciliation pass themselves (one at a time across processes).
broker.add_middleware(PeriodicReconciler(settings))
declare_actors(broker, settings)

if ML in settings.consumed_queues:
    # The ML worker loads its models once, at start, not on the first message.
    from pixtools.ml import ops as ml_ops
    from pixtools.ml import runtime as ml_runtime

    ml_runtime.configure(settings.ml_threads or None)
    ml_ops.preload()
