"""One logger set-up on stderr: JSON lines (CloudWatch-friendly, trace ids when present), or
human-readable lines when a person is watching a terminal."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from pixtools.observability.tracing import log_trace_fields

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
