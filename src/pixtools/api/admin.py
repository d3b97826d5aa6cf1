"""Admin routes: dead-letter inspection, replay and purge (admin API key required)."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, delete, get, post
from litestar.exceptions import HTTPException
from litestar.params import JSONBody, QueryParameter

from pixtools.api.auth import PrincipalDep, ServicesDep, admin_only
from pixtools.api.errors import refuse_duplicate_keys, single_valued_query
from pixtools.maintenance.deadletters import DeadLetters
from pixtools.messaging.middleware import dead_letter_note_key
from pixtools.messaging.names import Queue

QueueParam = Annotated[
    Queue,
    QueryParameter(
        name="queue",
    ),
]


class ReplayRequest(msgspec.Struct, forbid_unknown_fields=True):
    """The body of a replay: the queue, and which of its dead letters (or ``all``)."""

    queue: Queue
    message_ids: list[str] | None = None
    all: bool = False


def _dead_letters(services: ServicesDep) -> DeadLetters:
    if not services.settings.rabbitmq_url:
        raise HTTPException(
            status_code=409, detail="dead letters live in RabbitMQ; embedded mode has none"
        )
    return DeadLetters(services.settings.rabbitmq_url)


class AdminController(Controller):
    """The dead-letter routes of both queues, behind an admin key."""

    path = "/api/v1/admin"
    tags = ["admin"]
    guards = [admin_only, single_valued_query]  # authentication before parameter validation

    @get("/dead-letters", summary="Dead-lettered messages")
    async def list_dead_letters(
        self,
        services: ServicesDep,
        admin: PrincipalDep,  # noqa: ARG002  resolving it asserts an admin caller
        queue: QueueParam,
        limit: Annotated[int, QueryParameter(name="limit", ge=1, le=500)] = 50,
    ) -> dict[str, Any]:
        """Up to ``limit`` dead letters of ``queue``, with why each failed when that was noted."""
        dlq = _dead_letters(services)
        items = await asyncio.to_thread(dlq.browse, queue, limit=limit)
        for item in items:
            if item.get("error") is None and item.get("message_id"):
                note = await services.cache.get(dead_letter_note_key(str(item["message_id"])))
                if note:
                    item.update(json.loads(note))
        return {"queue": queue, "items": items}

    @post("/dead-letters/replay", status_code=200, summary="Replay dead-lettered messages")
    async def replay(
        self,
        services: ServicesDep,
        admin: PrincipalDep,  # noqa: ARG002  resolving it asserts an admin caller
        data: JSONBody[ReplayRequest],
        request: Request[Any, Any, Any],
    ) -> dict[str, Any]:
        """Put the named dead letters (or all of them) back on their queue."""
        # msgspec keeps the last of repeated keys: {"all": false, "all": true} must not
        # replay a whole queue. The body is valid JSON here (``data`` was decoded from it).
        json.loads(await request.body(), object_pairs_hook=refuse_duplicate_keys)
        if data.all and data.message_ids is not None:
            # Which one was meant? Replaying a whole queue is not the safe guess.
            raise HTTPException(
                status_code=400,
                detail="message_ids: give message ids or all: true, not both",
                extra={"field": "message_ids"},
            )
        if not data.all and not data.message_ids:
            raise HTTPException(
                status_code=400,
                detail="message_ids: give message ids, or all: true",
                extra={"field": "message_ids"},
            )
        dlq = _dead_letters(services)
        ids = None if data.all else data.message_ids
        replayed = await asyncio.to_thread(dlq.replay, data.queue, ids)
        return {"queue": data.queue, "replayed": replayed}

    @delete("/dead-letters", status_code=200, summary="Purge a dead-letter queue")
    async def purge(
        self,
        services: ServicesDep,
        admin: PrincipalDep,  # noqa: ARG002  resolving it asserts an admin caller
        queue: QueueParam,
    ) -> dict[str, Any]:
        """Drop every dead letter of ``queue``."""
        dlq = _dead_letters(services)
        purged = await asyncio.to_thread(dlq.purge, queue)
        return {"queue": queue, "purged": purged}
