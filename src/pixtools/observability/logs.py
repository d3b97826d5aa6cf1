"""One logger set-up on stderr: JSON lines (CloudWatch-friendly, trace ids when present), or
human-readable lines when a person is watching a terminal."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from pixtools.observability.tracing import log_trace_fields

# pika logs each failed connection step at ERROR (seven lines and a traceback per attempt) and
# then raises the failure to its caller, which says it once (a worker: one line per attempt,
# messaging.brokerlog). Its other loggers (a blocked connection, a channel closed by the
# broker) keep WARNING, less what _RaisedToCaller drops.
PIKA_CONNECTION_LOGGERS = (
    "pika.adapters.base_connection",
    "pika.adapters.blocking_connection",
    "pika.adapters.utils.connection_workflow",
    "pika.adapters.utils.io_services_utils",
    "pika.adapters.utils.selector_ioloop_adapter",
)


class _RaisedToCaller(logging.Filter):
    """Drops pika's log of a failure it raises to the caller anyway: pika.connection's ERRORs
    (a refused login or vhost) and pika.channel's "Received remote Channel.Close" (a passive
    declare of a queue that is not there, said as ChannelClosedByBroker)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == "pika.connection":
            return record.levelno != logging.ERROR
        return not str(record.msg).startswith("Received remote Channel.Close")


_STD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, extras and trace ids."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as one JSON line (its traceback, if any, under ``exc``)."""
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STD and not key.startswith("_"):
                entry[key] = value
        entry.update(log_trace_fields())
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    """``12:04:05 INFO  pixtools.api.app: message`` (and the traceback, if any)."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-5s %(name)s: %(message)s", "%H:%M:%S")


def configure_logging(level: str = "INFO", fmt: str = "auto") -> None:
    """Route all logging through one handler on stderr: ``fmt`` json, text, or auto (text
    when stderr is a terminal, else json)."""
    handler = logging.StreamHandler(sys.stderr)
    text = fmt == "text" or (fmt == "auto" and sys.stderr.isatty())
    handler.setFormatter(TextFormatter() if text else JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("pika", "botocore", "aiobotocore", "urllib3", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    for name in PIKA_CONNECTION_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    for name in ("pika.connection", "pika.channel"):
        pika_logger = logging.getLogger(name)
        if not any(isinstance(f, _RaisedToCaller) for f in pika_logger.filters):
            pika_logger.addFilter(_RaisedToCaller())
