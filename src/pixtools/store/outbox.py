"""The outbox table seen by its relay: claim due rows, record what was published."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import cast

import sqlalchemy as sa

from pixtools.backoff import backoff
from pixtools.store.database import Database
from pixtools.store.models import OutboxRow
from pixtools.store.types import utcnow

#: The table itself: statements on it leave the loaded ``OutboxRow`` objects alone.
OUTBOX = cast(sa.Table, OutboxRow.__table__)


class OutboxRepository:
    """The outbox as its relay and maintenance see it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def publish_due(
        self, publish: Callable[[OutboxRow], Awaitable[None]], *, limit: int = 200
    ) -> tuple[int, bool]:
        """Publish due rows in id order; (published, more may be due).

        Rows are claimed with ``FOR UPDATE SKIP LOCKED`` so relays in several API replicas
        share the work without publishing a row twice. A failed publish keeps the row (and
        every later one) for a later pass, with a growing delay on that row.

        Each row is marked by its id (``UPDATE ... WHERE id``), not by flushing the loaded
        objects: on SQLite the claim locks nothing, and a cancel may delete a claimed row
        meanwhile; a flush would then fail the whole pass at its commit (and undo the marks
        of the rows it did publish). A row gone is simply not marked.
        """
        now = utcnow()
        published = 0
        async with self.db.transaction() as s:
            rows = (
                await s.scalars(
                    sa.select(OutboxRow)
                    .where(OutboxRow.sent_at.is_(None), OutboxRow.available_at <= now)
                    .order_by(OutboxRow.id)
                    .limit(limit)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            for row in rows:
                mark = sa.update(OUTBOX).where(OUTBOX.c.id == row.id)
                try:
                    await publish(row)
                except Exception as exc:
                    attempts = row.publish_attempts + 1
                    await s.execute(
                        mark.values(
                            publish_attempts=attempts,
                            last_error=f"{type(exc).__name__}: {exc}"[:2000],
                            available_at=utcnow()
                            + timedelta(seconds=backoff(attempts, 2, 30, jitter=False)),
                        )
                    )
                    return published, False
                await s.execute(mark.values(sent_at=utcnow()))
                published += 1
        return published, len(rows) == limit

    async def pending_count(self) -> int:
        """How many rows are not yet published (the health report)."""
        async with self.db.reads() as s:
            return int(
                (
                    await s.scalar(
                        sa.select(sa.func.count())
                        .select_from(OutboxRow)
                        .where(OutboxRow.sent_at.is_(None))
                    )
                )
                or 0
            )

    async def next_due_in(self) -> float | None:
        """Seconds until the earliest unsent row is due (0 if one is due now)."""
        async with self.db.reads() as s:
            earliest: datetime | None = await s.scalar(
                sa.select(sa.func.min(OutboxRow.available_at)).where(OutboxRow.sent_at.is_(None))
            )
        if earliest is None:
            return None
        return max(0.0, (earliest - utcnow()).total_seconds())

    async def delete_sent_before(self, cutoff_hours: float) -> int:
        """Delete the rows published more than ``cutoff_hours`` ago; how many went."""
        async with self.db.transaction() as s:
            result = await s.execute(
                sa.delete(OutboxRow).where(
                    OutboxRow.sent_at.is_not(None),
                    OutboxRow.sent_at < utcnow() - timedelta(hours=cutoff_hours),
                )
            )
            return int(result.rowcount or 0)  # type: ignore[attr-defined]
