"""Dramatiq middleware of ours."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

import dramatiq

log = logging.getLogger(__name__)

DEAD_LETTER_NOTE_TTL = 7 * 24 * 3600  # as long as Dramatiq keeps dead letters


def dead_letter_note_key(message_id: str) -> str:
    return f"dlq:{message_id}"


class DeadLetterNotes(dramatiq.Middleware):
    """Remember why a message was dead-lettered.

    RabbitMQ dead-letters the message as it was delivered, without the traceback Dramatiq
    adds on failure; this keeps the error (in Redis, beside the cache, for as long as the
    dead letter lives) so that ``GET /api/v1/admin/dead-letters`` can say what went wrong.
    Its after-hook must run after ``Retries``, which decides that a message has failed for
    good: Dramatiq runs after-hooks in reverse order, so it goes first in the list.
    """

    def __init__(self, redis_url: str, prefix: str = "pixtools:") -> None:
        import redis

        self.redis = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.prefix = prefix

    def after_process_message(
        self,
        broker: Any,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        if exception is None or not message.failed:
            return
        note = {
            "error": f"{type(exception).__name__}: {exception}"[:1000],
            "traceback": str(message.options.get("traceback", ""))[-4000:],
            "at": datetime.now(UTC).isoformat(),
        }
        try:
            self.redis.set(
                self.prefix + dead_letter_note_key(message.message_id),
                json.dumps(note),
                ex=DEAD_LETTER_NOTE_TTL,
            )
        except Exception:  # a note is a courtesy; never fail the worker for it
            log.warning(
                "could not record why %s was dead-lettered", message.message_id, exc_info=True
            )
