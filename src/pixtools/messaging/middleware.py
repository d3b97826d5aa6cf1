"""Dramatiq middleware of ours: each message's trace, and why a message was dead-lettered."""

from __future__ import annotations

import json
import logging
import threading
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, Final

import dramatiq
from dramatiq.errors import ActorNotFound

from pixtools.messaging.names import PROCESS_ACTOR
from pixtools.observability.tracing import continued

log = logging.getLogger(__name__)

DEAD_LETTER_NOTE_TTL = 7 * 24 * 3600  # as long as Dramatiq keeps dead letters
TRACEPARENT: Final = "traceparent"  # the message option carrying the W3C trace context


def dead_letter_note_key(message_id: str) -> str:
    """The cache key of a dead letter's note."""
    return f"dlq:{message_id}"


class TraceContext(dramatiq.Middleware):
    """Run each message in a consumer span continuing the trace that wrote its outbox row.

    The relay puts the W3C ``traceparent`` in ``message.options["traceparent"]``; the span
    opens before the actor runs and ends after it (with its exception, if it raised). The
    span is named after the actor's function and carries the job id (and the output's name
    for an output message). Messages queued by an older version carry the trace context as
    the actor keyword ``traceparent`` instead: it is taken out of ``message.kwargs`` here
    (and used), so that no actor needs to accept it.
    """

    def __init__(self) -> None:
        self._local = threading.local()  # a worker thread runs one message at a time

    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Open the message's span."""
        legacy = message.kwargs.pop(TRACEPARENT, None)
        traceparent = message.options.get(TRACEPARENT) or legacy
        stack = ExitStack()
        stack.enter_context(
            continued(traceparent, _span_name(broker, message.actor_name), **_attributes(message))
        )
        self._local.stack = stack

    def after_process_message(
        self,
        broker: dramatiq.Broker,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Close the message's span, with its exception if it raised."""
        stack: ExitStack | None = getattr(self._local, "stack", None)
        self._local.stack = None
        if stack is None:
            return
        if exception is None:
            stack.close()
        else:
            stack.__exit__(type(exception), exception, exception.__traceback__)

    def after_skip_message(self, broker: dramatiq.Broker, message: Any) -> None:
        """Close the span of a message skipped before it ran."""
        self.after_process_message(broker, message)


def _span_name(broker: dramatiq.Broker, actor_name: str) -> str:
    try:
        return str(broker.get_actor(actor_name).fn.__name__)
    except (ActorNotFound, AttributeError):
        return actor_name


def _attributes(message: Any) -> dict[str, str]:
    args = list(message.args)
    attributes = {"pixtools.job_id": str(args[0])} if args else {}
    if message.actor_name in PROCESS_ACTOR.values() and len(args) > 1:
        attributes["pixtools.output"] = str(args[1])
    return attributes


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
        """Note the error of a message that failed for good."""
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
