"""Long polling: ``GET /api/v1/jobs/{id}?wait=N`` answers as soon as the job finishes, and
with ``since=`` as soon as one of its outputs moves (starts, ends, is taken over).

One LISTEN connection per API process (``pixtools_jobs`` and ``pixtools_progress``, payload:
the job id) wakes the requests waiting on that job; in embedded mode the in-process signals
do. A client that would otherwise poll every fraction of a second makes one request per
change instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator

from pixtools.store.database import JOBS_CHANNEL, PROGRESS_CHANNEL, Database, Listener

log = logging.getLogger(__name__)


class JobWaiters:
    """Requests waiting for jobs to finish (or to move), woken by job id."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._waiting: dict[str, set[asyncio.Future[None]]] = {}
        self._moving: dict[str, set[asyncio.Future[None]]] = {}
        self._listeners: list[Listener] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Listen for finished and moving jobs (LISTEN, or the in-process signals)."""
        self._loop = asyncio.get_running_loop()
        self.db.signals.job_finished.append(self._finished_threadsafe)
        self.db.signals.job_progress.append(self._moved_threadsafe)
        if not self.db.is_sqlite:
            for channel, callback in (
                (JOBS_CHANNEL, self._finished),
                (PROGRESS_CHANNEL, self._moved),
            ):
                try:
                    self._listeners.append(await self.db.listen(channel, callback))
                except Exception:  # waiting requests fall back to their own timeout
                    log.warning(
                        "LISTEN %s unavailable; ?wait= degrades to its timeout",
                        channel,
                        exc_info=True,
                    )

    async def stop(self) -> None:
        """Stop listening and cancel every wait still pending."""
        if self._finished_threadsafe in self.db.signals.job_finished:
            self.db.signals.job_finished.remove(self._finished_threadsafe)
        if self._moved_threadsafe in self.db.signals.job_progress:
            self.db.signals.job_progress.remove(self._moved_threadsafe)
        for listener in self._listeners:
            await listener.close()
        self._listeners.clear()
        for table in (self._waiting, self._moving):
            for futures in table.values():
                for fut in futures:
                    fut.cancel()
            table.clear()

    def _finished_threadsafe(self, job_id: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._finished, job_id)

    def _moved_threadsafe(self, job_id: str) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._moved, job_id)

    def _finished(self, job_id: str) -> None:
        for table in (self._waiting, self._moving):  # a finished job has moved too
            for fut in table.pop(job_id, ()):
                if not fut.done():
                    fut.set_result(None)

    def _moved(self, job_id: str) -> None:
        for fut in self._moving.pop(job_id, ()):
            if not fut.done():
                fut.set_result(None)

    @contextlib.contextmanager
    def subscribe(self, job_id: str, *, progress: bool = False) -> Iterator[asyncio.Future[None]]:
        """A future resolved when ``job_id`` finishes (or, with ``progress``, when one of its
        outputs moves). Subscribe *before* re-reading the job."""
        table = self._moving if progress else self._waiting
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        table.setdefault(job_id, set()).add(fut)
        try:
            yield fut
        finally:
            futures = table.get(job_id)
            if futures is not None:
                futures.discard(fut)
                if not futures:
                    del table[job_id]
