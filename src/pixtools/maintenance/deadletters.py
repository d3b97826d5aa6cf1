"""Dead letters: messages Dramatiq gave up on, kept in ``<queue>.XQ`` (7 days by default;
the name is ``messaging.names.dead_letter_queue``).

Listing browses without consuming (messages are returned to the queue); replay moves the
chosen messages back to their queue with a fresh retry budget; purge empties the queue.
All blocking (pika); the API calls these in a thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pika
from pika.adapters.blocking_connection import BlockingChannel

from pixtools.messaging.names import QUEUES, dead_letter_queue

MAX_SCAN = 10_000


def _summary(body: bytes, props: Any) -> dict[str, Any]:
    try:
        msg = json.loads(body)
    except ValueError:
        return {"message_id": None, "error": "undecodable message", "raw_bytes": len(body)}
    options = msg.get("options") or {}
    trace = str(options.get("traceback") or "").strip().splitlines()
    dead_at = None
    for death in (props.headers or {}).get("x-death", []) or []:
        t = death.get("time")
        if t is not None:
            dead_at = t.replace(tzinfo=UTC).isoformat() if isinstance(t, datetime) else str(t)
            break
    args = msg.get("args") or []
    return {
        "message_id": msg.get("message_id"),
        "actor": msg.get("actor_name"),
        "queue": msg.get("queue_name"),
        "job_id": args[0] if args else None,
        "args": args,
        "retries": options.get("retries", 0),
        "error": trace[-1] if trace else None,
        "enqueued_at": datetime.fromtimestamp(
            msg.get("message_timestamp", 0) / 1000, UTC
        ).isoformat(),
        "dead_at": dead_at,
    }


class DeadLetters:
    """The dead-letter queues in RabbitMQ: browse, replay, purge."""

    def __init__(self, url: str) -> None:
        self.params = pika.URLParameters(url)
        self.params.socket_timeout = 5
        self.params.connection_attempts = 1

    @contextmanager
    def _channel(self) -> Iterator[BlockingChannel]:
        conn = pika.BlockingConnection(self.params)
        try:
            ch = conn.channel()
            yield ch
        finally:
            if conn.is_open:
                conn.close()

    @staticmethod
    def _check(queue: str) -> None:
        if queue not in QUEUES:
            raise ValueError(f"queue must be one of {', '.join(QUEUES)}")

    def _declare(self, ch: BlockingChannel, queue: str) -> int:
        # Passive: never create (or re-argument) Dramatiq's queues from here.
        try:
            return int(
                ch.queue_declare(dead_letter_queue(queue), passive=True).method.message_count
            )
        except pika.exceptions.ChannelClosedByBroker:
            return -1

    def browse(self, queue: str, *, limit: int = 50) -> list[dict[str, Any]]:
        """Up to ``limit`` dead letters, left on the queue."""
        self._check(queue)
        out: list[dict[str, Any]] = []
        with self._channel() as ch:
            if self._declare(ch, queue) <= 0:
                return out
            # Unacked gets are returned to the queue when the channel closes.
            while len(out) < limit:
                method, props, body = ch.basic_get(dead_letter_queue(queue), auto_ack=False)
                if method is None:
                    break
                out.append(_summary(body, props))
        return out

    def replay(self, queue: str, message_ids: list[str] | None) -> int:
        """Re-publish the named messages (all of them when ``message_ids`` is None)."""
        self._check(queue)
        wanted = None if message_ids is None else set(message_ids)
        replayed = 0
        with self._channel() as ch:
            count = self._declare(ch, queue)
            if count <= 0:
                return 0
            ch.confirm_delivery()
            for _ in range(min(count, MAX_SCAN)):
                method, _props, body = ch.basic_get(dead_letter_queue(queue), auto_ack=False)
                if method is None:
                    break
                try:
                    msg = json.loads(body)
                except ValueError:
                    continue  # left unacked: stays in the dead-letter queue
                if wanted is not None and msg.get("message_id") not in wanted:
                    continue
                options = {
                    k: v
                    for k, v in (msg.get("options") or {}).items()
                    if k not in ("retries", "traceback", "eta")
                }
                msg["options"] = options
                msg["queue_name"] = queue
                ch.basic_publish(
                    exchange="",
                    routing_key=queue,
                    body=json.dumps(msg, separators=(",", ":")).encode(),
                    properties=pika.BasicProperties(delivery_mode=2),
                    mandatory=True,
                )
                ch.basic_ack(method.delivery_tag)
                replayed += 1
        return replayed

    def purge(self, queue: str) -> int:
        """Drop every dead letter of ``queue``; the number dropped."""
        self._check(queue)
        with self._channel() as ch:
            if self._declare(ch, queue) < 0:
                return 0
            return int(ch.queue_purge(dead_letter_queue(queue)).method.message_count)
